import express, { type Express } from 'express';
import helmet from 'helmet';
import type { Deps } from '../app/deps.js';
import './context.js';
import { authenticate } from './middleware/auth.js';
import { BULL_BOARD_CSP, BULL_BOARD_PATH, bullBoardRoutes } from './bull-board.js';
import { CONSOLE_CSP, CONSOLE_PATH, consoleRoutes } from './console/index.js';
import { errorHandler, notFoundHandler, requireJsonBody } from './middleware/errors.js';
import { jsonBody } from './middleware/json-body.js';
import { rateLimit } from './middleware/rate-limit.js';
import { requestContext } from './middleware/request-context.js';
import { routeNamer } from './route-names.js';
import { healthRoutes } from '../app/health.js';
import { merchantRoutes } from './routes/merchants.js';
import { apiKeyRoutes } from './routes/api-keys.js';
import { memberRoutes } from './routes/members.js';
import { cardRoutes } from './routes/cards.js';
import { levelRoutes } from './routes/levels.js';
import { operationRoutes } from './routes/operations.js';
import { approvalRoutes } from './routes/approvals.js';
import { cardLimitRoutes } from './routes/card-limits.js';
import { qrRoutes } from './routes/qr.js';
import { transactionRoutes } from './routes/transactions.js';
import { settlementRoutes } from './routes/settlements.js';
import { platformRoutes } from './routes/platform.js';
import { webhookRoutes } from './routes/webhooks.js';
import { privacyRoutes } from './routes/privacy.js';
import { memberDirectoryRoutes } from './routes/member-directory.js';
import { adminListRoutes } from './routes/admin-lists.js';
import { reportRoutes } from './routes/reports.js';
import type { OperationWaiter } from './operation-waiter.js';

/** Builds the Express app without listening, so tests run it on port 0 (CONVENTIONS.md 9). */
export function createApp(deps: Deps, waiter: OperationWaiter): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', 'loopback');
  app.set('etag', false);
  const v1 = express.Router();
  app.use(requestContext(deps, routeNamer(v1, '/v1')));
  // Bull Board's page has inline styles and scripts, and links a web font from Google: this policy
  // allows its own assets only, so the browser makes no request to any other host.
  app.use(BULL_BOARD_PATH, helmet({ contentSecurityPolicy: { useDefaults: false, directives: BULL_BOARD_CSP } }));
  app.use(bullBoardRoutes(deps));
  // The console's page loads only its own script, style sheet and JSON: a stricter policy than the default.
  app.use(CONSOLE_PATH, helmet({ contentSecurityPolicy: { useDefaults: false, directives: CONSOLE_CSP } }));
  app.use(consoleRoutes(deps, v1));
  app.use(helmet());
  app.use(healthRoutes(deps));

  v1.use(rateLimit(deps, 'ip', deps.config.RATE_LIMIT_PER_IP_PER_MIN, (req) => req.ip));
  v1.use(requireJsonBody);
  v1.use(jsonBody(deps.config.BODY_LIMIT));
  v1.use(authenticate(deps));
  v1.use(rateLimit(deps, 'key', deps.config.RATE_LIMIT_PER_KEY_PER_MIN, (req) => req.principal?.keyId));
  v1.use(merchantRoutes(deps));
  v1.use(apiKeyRoutes(deps));
  v1.use(memberRoutes(deps));
  v1.use(qrRoutes(deps));
  v1.use(cardRoutes(deps));
  v1.use(levelRoutes(deps));
  v1.use(cardLimitRoutes(deps));
  v1.use(operationRoutes(deps, waiter));
  v1.use(approvalRoutes(deps));
  v1.use(transactionRoutes(deps));
  v1.use(settlementRoutes(deps));
  v1.use(platformRoutes(deps));
  v1.use(webhookRoutes(deps));
  v1.use(privacyRoutes(deps));
  v1.use(memberDirectoryRoutes(deps));
  v1.use(adminListRoutes(deps));
  v1.use(reportRoutes(deps));
  app.use('/v1', v1);

  app.use(notFoundHandler);
  app.use(errorHandler(deps.logger));
  return app;
}
