import { expect } from 'chai';
import { checkConstraintValues, missingCheckValues } from '../../db/queries/check-constraints.js';
import { REGISTRY_CHECKS } from '../../operations/index.js';
import { startSystem, type TestSystem } from '../helpers/system.js';

/** A kind added without its migration must be caught before it reaches a card. */
describe('operations registry and the schema', () => {
  let sys: TestSystem;
  before(async () => {
    sys = await startSystem({}, { workers: false });
  });
  after(async () => {
    await sys.stop();
  });

  it('every CHECK derived from the registry allows exactly the registry values', async () => {
    for (const { constraint, values } of REGISTRY_CHECKS) {
      expect(await checkConstraintValues(sys.deps.db, constraint), constraint).to.have.members([...values]);
    }
    expect(await missingCheckValues(sys.deps.db, REGISTRY_CHECKS)).to.deep.equal([]);
  });

  it('names the constraint and the value a migration must add, and a constraint that does not exist', async () => {
    const problems = await missingCheckValues(sys.deps.db, [
      { constraint: 'operations_type', values: ['payment', 'card_teleport'] },
      { constraint: 'no_such_constraint', values: ['x'] },
    ]);
    expect(problems).to.have.length(2);
    expect(problems[0]).to.match(/^operations_type does not allow card_teleport: add a migration/);
    expect(problems[1]).to.match(/^no_such_constraint does not exist/);
  });
});
