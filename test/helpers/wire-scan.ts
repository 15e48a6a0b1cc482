import protobuf from 'protobufjs/minimal.js';

/** How many top-level fields of a well-formed message carry this tag (read with protobufjs, not our decoders). */
export function countTopLevel(bytes: Buffer, tag: number): number {
  const r = protobuf.Reader.create(bytes);
  let n = 0;
  while (r.pos < r.len) {
    const t = r.uint32();
    if (t === tag) n++;
    r.skipType(t & 7);
  }
  return n;
}
