import type * as grpc from '@grpc/grpc-js';
import type { AdminHandlers as GeneratedAdminHandlers } from './generated/levelreplicator/v1/Admin.js';

/** The Admin service (role changes) as every node serves it; see src/node/admin-service.ts. */
export interface AdminHandlers extends grpc.UntypedServiceImplementation {
  Promote: GeneratedAdminHandlers['Promote'];
  Follow: GeneratedAdminHandlers['Follow'];
  PauseWrites: GeneratedAdminHandlers['PauseWrites'];
}
