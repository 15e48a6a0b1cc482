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
 * Every name a node answers for is known from its start (NOT_SERVING until set), so a
 * probe never gets NOT_FOUND for a name the node may serve later.
 */
export class StandardServices {
  private readonly health: HealthImplementation;

  constructor(
    server: grpc.Server,
    /** Services whose status follows the node (setAll). */
    private readonly serviceNames: readonly string[],
    /**
     * Names whose status does not follow the node: NOT_SERVING until set() says otherwise.
     * A follower's Master service, which takes no writes (NOT_MASTER), is one and is never
     * set, so a load balancer checking that name never sends writes to a follower; a
     * follower's replication stream (REPLICATION_STREAM) is another, set once it can serve.
     */
    ownStatus: readonly string[] = [],
  ) {
    this.health = new HealthImplementation(Object.fromEntries(['', ...serviceNames, ...ownStatus].map((s) => [s, 'NOT_SERVING' as ServingStatus])));
    this.health.addToServer(server);
    new ReflectionService(reflectionPackageDefinition()).addToServer(server);
  }

  /** Sets the status of the server and of every service it was created with. */
  setAll(status: ServingStatus): void {
    for (const s of ['', ...this.serviceNames]) this.health.setStatus(s, status);
  }

  /** Sets one name's status (Watch callers hear it); for the names given as ownStatus. */
  set(service: string, status: ServingStatus): void {
    this.health.setStatus(service, status);
  }
}

export const MASTER_SERVICE = 'levelreplicator.v1.Master';
export const STORE_SERVICE = 'levelreplicator.v1.Store';
/**
 * A health name for the replication stream alone (Master.Subscribe and Master.Ack), which
 * the master serves and a follower serves to chained followers: a probe of a node that
 * feeds followers checks this, whatever the node's role. Not a gRPC service of its own:
 * the method path of Subscribe, so the name says what it stands for.
 */
export const REPLICATION_STREAM = 'levelreplicator.v1.Master/Subscribe';
