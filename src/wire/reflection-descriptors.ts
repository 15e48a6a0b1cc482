import * as protoLoader from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import descriptor, { type IDescriptorProto, type IFileDescriptorProto } from 'protobufjs/ext/descriptor/index.js';
import { LOADER_OPTIONS, PROTO_FILE } from './proto.js';

/**
 * Our services and the health service, described for server reflection exactly as the
 * .proto files declare them.
 *
 * Reflection serves the file descriptors of a proto-loader package definition. The
 * application's definition (proto.ts) carries field names as our generated types spell
 * them (followerId, minSeq) and type references relative to their message (Write, Kind),
 * so a reflection-driven client (grpcurl, Python's json_format) rejected the .proto's
 * own names (min_seq) and had to guess at the types. This definition is loaded apart,
 * keeping the .proto's names, and every type reference is made fully qualified
 * (.levelreplicator.v1.Write); json_name is set as protoc sets it. The application's
 * definition and generated types are untouched.
 */
export function reflectionPackageDefinition(): protoLoader.PackageDefinition {
  const definition = protoLoader.loadSync([PROTO_FILE, healthProtoPath], { ...LOADER_OPTIONS, keepCase: true });
  const rewritten = new Map<readonly Buffer[], Buffer[]>();
  for (const entry of Object.values(definition)) {
    if (!('fileDescriptorProtos' in entry) || !Array.isArray(entry.fileDescriptorProtos)) continue;
    const files: readonly Buffer[] = entry.fileDescriptorProtos;
    let fixed = rewritten.get(files);
    if (!fixed) {
      fixed = qualifyDescriptors(files);
      rewritten.set(files, fixed);
    }
    entry.fileDescriptorProtos = fixed;
  }
  return definition;
}

/** The files with every type reference fully qualified and every json_name set. */
export function qualifyDescriptors(encoded: readonly Buffer[]): Buffer[] {
  const files = encoded.map((b) => descriptor.FileDescriptorProto.decode(b) as IFileDescriptorProto);
  const symbols = new Set<string>();
  for (const file of files) {
    const scope = file.package ? `.${file.package}` : '';
    for (const e of file.enumType ?? []) symbols.add(`${scope}.${e.name}`);
    for (const m of file.messageType ?? []) collectSymbols(m, scope, symbols);
  }
  for (const file of files) {
    const scope = file.package ? `.${file.package}` : '';
    for (const m of file.messageType ?? []) qualifyMessage(m, scope, symbols);
    for (const s of file.service ?? []) {
      for (const method of s.method ?? []) {
        if (method.inputType) method.inputType = resolveName(method.inputType, scope, symbols);
        if (method.outputType) method.outputType = resolveName(method.outputType, scope, symbols);
      }
    }
  }
  return files.map((f) => Buffer.from(descriptor.FileDescriptorProto.encode(f).finish()));
}

function collectSymbols(message: IDescriptorProto, scope: string, symbols: Set<string>): void {
  const name = `${scope}.${message.name}`;
  symbols.add(name);
  for (const e of message.enumType ?? []) symbols.add(`${name}.${e.name}`);
  for (const nested of message.nestedType ?? []) collectSymbols(nested, name, symbols);
}

function qualifyMessage(message: IDescriptorProto, scope: string, symbols: Set<string>): void {
  const name = `${scope}.${message.name}`;
  for (const field of message.field ?? []) {
    if (field.typeName) field.typeName = resolveName(field.typeName, name, symbols);
    if (field.name) field.jsonName = jsonName(field.name);
  }
  for (const nested of message.nestedType ?? []) qualifyMessage(nested, name, symbols);
}

/** A type reference resolved as protoc resolves it: innermost scope first. */
function resolveName(ref: string, scope: string, symbols: ReadonlySet<string>): string {
  if (ref.startsWith('.')) return ref;
  for (let s = scope; ; s = s.slice(0, s.lastIndexOf('.'))) {
    if (symbols.has(`${s}.${ref}`)) return `${s}.${ref}`;
    if (s === '') throw new Error(`internal error: type ${ref} referenced in ${scope} is not defined`);
  }
}

/** protoc's json_name (ToJsonName): underscores dropped, the character after each upper-cased. */
function jsonName(name: string): string {
  let out = '';
  let upper = false;
  for (const c of name) {
    if (c === '_') upper = true;
    else {
      out += upper ? c.toUpperCase() : c;
      upper = false;
    }
  }
  return out;
}
