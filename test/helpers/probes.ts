import { createRequire } from 'node:module';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { service as healthService } from 'grpc-health-check';

/** Scrapes GET /metrics and returns each sample as `name{labels}` -> value (labels as printed). */
export async function scrapeMetrics(address: string): Promise<Map<string, number>> {
  const res = await fetch(`http://${address}/metrics`);
  if (res.status !== 200) throw new Error(`GET /metrics on ${address}: HTTP ${res.status}`);
  const samples = new Map<string, number>();
  for (const line of (await res.text()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const sp = line.lastIndexOf(' ');
    samples.set(line.slice(0, sp), Number(line.slice(sp + 1)));
  }
  return samples;
}

/** The value of one sample, e.g. metric(samples, 'lr_master_follower_lag_entries', { follower: '2' }). */
export function metric(samples: Map<string, number>, name: string, labels: Record<string, string> = {}): number | undefined {
  const entries = Object.entries(labels);
  const key = entries.length === 0 ? name : `${name}{${entries.map(([k, v]) => `${k}="${v}"`).join(',')}}`;
  return samples.get(key);
}

/** Metric names (without _bucket/_sum/_count suffixes of histograms) present in a scrape. */
export function metricNames(samples: Map<string, number>): Set<string> {
  const names = new Set<string>();
  for (const key of samples.keys()) {
    const name = key.split('{')[0];
    names.add(name);
    names.add(name.replace(/_(bucket|sum|count)$/, ''));
  }
  return names;
}

/** grpc.health.v1.Health/Check through the standard health client definition. */
export function healthCheck(address: string, service = ''): Promise<string> {
  const Client = grpc.makeGenericClientConstructor(healthService, 'Health');
  const client = new Client(address, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
    Check(req: { service: string }, o: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: { status: string }) => void): void;
  };
  return new Promise((resolve, reject) => {
    client.Check({ service }, { deadline: new Date(Date.now() + 5_000) }, (err, res) => {
      client.close();
      if (err) reject(err);
      else resolve(res!.status);
    });
  });
}

/**
 * Server reflection's list_services (what `grpcurl list` does) over grpc.reflection.v1 or
 * v1alpha, sending `authorization: Bearer <token>` when a token is given. Resolves to the
 * service names; rejects with the call's error.
 */
export async function reflectionServices(address: string, token?: string, version: 'v1' | 'v1alpha' = 'v1'): Promise<string[]> {
  const res = await reflectionCall(address, { list_services: '' }, token, version);
  return (res.list_services_response?.service ?? []).map((s) => s.name);
}

/** Server reflection's file_containing_symbol (what `grpcurl describe` does): the encoded FileDescriptorProtos it answers with. */
export async function reflectionFilesContaining(address: string, symbol: string, token?: string, version: 'v1' | 'v1alpha' = 'v1'): Promise<Buffer[]> {
  const res = await reflectionCall(address, { file_containing_symbol: symbol }, token, version);
  if (res.error_response) throw new Error(`reflection: ${res.error_response.error_message}`);
  return res.file_descriptor_response?.file_descriptor_proto ?? [];
}

interface ReflectionResponse {
  list_services_response?: { service: { name: string }[] };
  file_descriptor_response?: { file_descriptor_proto: Buffer[] };
  error_response?: { error_message: string };
}

/** One request on a grpc.reflection ServerReflectionInfo stream; resolves to its one response, rejects with the call's error. */
function reflectionCall(address: string, request: object, token: string | undefined, version: 'v1' | 'v1alpha'): Promise<ReflectionResponse> {
  const require = createRequire(import.meta.url);
  const protoFile = path.join(path.dirname(require.resolve('@grpc/reflection')), `../proto/grpc/reflection/${version}/reflection.proto`);
  const def = protoLoader.loadSync(protoFile, { keepCase: true, defaults: true, oneofs: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { grpc: { reflection: Record<string, { ServerReflection: grpc.ServiceClientConstructor }> } };
  const client = new pkg.grpc.reflection[version].ServerReflection(address, grpc.credentials.createInsecure());
  const metadata = new grpc.Metadata();
  if (token) metadata.set('authorization', `Bearer ${token}`);
  return new Promise((resolve, reject) => {
    const call = (client as unknown as { ServerReflectionInfo(md: grpc.Metadata, o: grpc.CallOptions): grpc.ClientDuplexStream<object, ReflectionResponse> })
      .ServerReflectionInfo(metadata, { deadline: new Date(Date.now() + 5_000) });
    call.on('data', (res: ReflectionResponse) => {
      resolve(res);
      call.end();
      client.close();
    });
    call.on('error', (err) => {
      client.close();
      reject(err);
    });
    call.write(request);
  });
}

