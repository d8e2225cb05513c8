import type { Deps } from '../config/deps.js';
import type { AppError } from '../domain/errors.js';
export async function failOperation(_deps: Deps, _operationId: string, _error: AppError): Promise<void> {}
