import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

/**
 * Imports point down only (CONVENTIONS.md "Layout"): api → services → jobs/workers → operations →
 * db → config → domain,
 * with app/ (composition root, entry wiring) and dev/, bench/, cli/, tests/ above everything.
 * Each block names the top-level folders a layer must not import; the regex matches a relative
 * import that climbs out to one of them (no folder inside a layer shares those names). The Deps
 * type may come from app/ everywhere.
 */
const upward = (folders, why) => ({
  '@typescript-eslint/no-restricted-imports': [
    'error',
    {
      patterns: [
        { regex: `^(\\.\\./)+(${folders.filter((f) => f !== 'app').join('|')})(/|$)`, message: `Upward import: ${why} (CONVENTIONS.md "Layout").` },
        // The Deps bag (app/deps.ts) is passed down to every layer (CONVENTIONS.md 5): its type, never its code.
        ...(folders.includes('app') ? [{ regex: '^(\\.\\./)+app(/|$)', allowTypeImports: true, message: `Upward import: ${why}; only \`import type\` from app/ (CONVENTIONS.md "Layout").` }] : []),
      ],
    },
  ],
});

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', '.data/', 'bench/results/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node, ...globals.mocha } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'error',
      'no-console': 'off',
    },
  },
  {
    // The console's page script runs in the browser, as a classic script (api/console/assets).
    files: ['api/console/assets/**/*.js'],
    languageOptions: { sourceType: 'script', globals: { ...globals.browser } },
  },
  {
    // Tests read JSON bodies of many shapes; typing each would add noise, not safety.
    files: ['tests/**/*.ts', 'bench/**/*.ts'],
    rules: { '@typescript-eslint/no-unused-expressions': 'off', '@typescript-eslint/no-explicit-any': 'off' },
  },
  { files: ['domain/**/*.ts'], rules: upward(['app', 'api', 'services', 'workers', 'jobs', 'operations', 'db', 'config', 'dev', 'bench', 'cli', 'tests'], 'domain/ imports nothing of the app') },
  { files: ['config/**/*.ts'], rules: upward(['app', 'api', 'services', 'workers', 'jobs', 'operations', 'db', 'dev', 'bench', 'cli', 'tests'], 'config/ imports only config/ and domain/') },
  { files: ['db/**/*.ts'], rules: upward(['app', 'api', 'services', 'workers', 'jobs', 'operations', 'dev', 'bench', 'cli', 'tests'], 'db/ imports only db/, domain/ and config/') },
  // The demo seed drives a real recharge through the job layer; only `npm start` (dev/) runs it.
  { files: ['db/seeds/**/*.ts'], rules: { '@typescript-eslint/no-restricted-imports': 'off' } },
  { files: ['operations/**/*.ts'], rules: upward(['app', 'api', 'services', 'workers', 'jobs', 'dev', 'bench', 'cli', 'tests'], 'operations/ imports only db/, config/ and domain/') },
  { files: ['jobs/**/*.ts', 'workers/**/*.ts'], rules: upward(['api', 'services', 'dev', 'bench', 'cli', 'tests'], 'jobs/ and workers/ do not import api/ or services/') },
  { files: ['services/**/*.ts'], rules: upward(['api', 'workers', 'dev', 'bench', 'cli', 'tests'], 'services/ do not import api/ or workers/') },
  { files: ['api/**/*.ts'], rules: upward(['workers', 'dev', 'bench', 'cli', 'tests'], 'api/ does not import workers/, dev/, bench/ or cli/') },
);
