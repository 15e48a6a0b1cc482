import type * as grpc from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation, type ServingStatus } from 'grpc-health-check';
import { reflectionPackageDefinition } from './reflection-descriptors.js';

/**
 * The standard gRPC health service (grpc.health.v1.Health) and server reflection
 * (grpc.reflection.v1 and v1alpha) on a node's server, so grpcurl, grpc_health_probe
 * and load balancers work without our .proto files.
 *
 * Health answers for the whole server ('') and for each named service. Nodes report
 * SERVING once they listen and NOT_SERVING while they stop or after a fatal store error.
 */
export class StandardServices {
  private readonly health: HealthImplementation;

  constructor(
    server: grpc.Server,
    /** Services whose status follows the node (setAll). */
    private readonly serviceNames: readonly string[],
    /**
     * Services the server registers but never serves, reported NOT_SERVING always: a
     * follower's Master service, which refuses every call (NOT_MASTER), so a load balancer
     * checking that name never sends writes to a follower.
     */
    neverServing: readonly string[] = [],
  ) {
    this.health = new HealthImplementation(Object.fromEntries(['', ...serviceNames, ...neverServing].map((s) => [s, 'NOT_SERVING' as ServingStatus])));
    this.health.addToServer(server);
    new ReflectionService(reflectionPackageDefinition()).addToServer(server);
  }

  /** Sets the status of the server and of every service it was created with. */
  setAll(status: ServingStatus): void {
    for (const s of ['', ...this.serviceNames]) this.health.setStatus(s, status);
  }
}

export const MASTER_SERVICE = 'levelreplicator.v1.Master';
export const STORE_SERVICE = 'levelreplicator.v1.Store';
