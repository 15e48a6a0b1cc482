import type { IFileDescriptorSet } from 'protobufjs/ext/descriptor/index.js';

// protobufjs/ext/descriptor adds Root.fromDescriptor when it is imported, but its typings
// do not declare it (request-decoding.ts builds request types from the file descriptors
// proto-loader attaches to each method definition).
declare module 'protobufjs' {
  namespace Root {
    function fromDescriptor(set: IFileDescriptorSet): Root;
  }
}
