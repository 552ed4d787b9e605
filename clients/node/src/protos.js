'use strict';
// Loads the repository's proto files at runtime (@grpc/proto-loader) and turns
// the loaded messages into plain objects and back.
//
// Conventions, the same for every call of the package:
//   - field names are camelCase (proto-loader's keepCase: false): tokenId,
//     attnEntropy, topK. Objects given to the client may also use the protos'
//     snake_case names (top_k); a name that is neither is a TypeError, so a
//     typo in a sampler config is never silently dropped.
//   - uint64 (the seeds, full 64-bit range) is a decimal string; the client
//     accepts a seed as a string, a bigint or a safe-integer number.
//     int64 (steps, counts, sizes) is a Number.
//   - enums are their proto names on the wire; the clients map them to short
//     names (MODE_FLOWING -> 'flowing', FINISH_REASON_EOS -> 'eos').
//   - an optional field that is unset is absent from the object.
const fs = require('node:fs');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTO_FILES = ['sampler/v1/sampler.proto', 'runner/v1/runner.proto'];

const LOADER_OPTIONS = {
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

// The proto folder: `protoDir` when given, else $ENTROSERVE_PROTO_DIR, else
// the repository's proto/ (this package lives in clients/node/ of it).
function resolveProtoDir(protoDir) {
  const dir = protoDir || process.env.ENTROSERVE_PROTO_DIR ||
      path.resolve(__dirname, '..', '..', '..', 'proto');
  for (const file of PROTO_FILES) {
    if (!fs.existsSync(path.join(dir, file))) {
      throw new Error(`entroserve: no ${file} under ${dir}; pass protoDir (the repository's ` +
                      'proto/ folder) or set ENTROSERVE_PROTO_DIR');
    }
  }
  return dir;
}

const loaded = new Map();  // proto folder -> Protos

class Protos {
  constructor(dir) {
    this.dir = dir;
    this.definition = protoLoader.loadSync(PROTO_FILES, {...LOADER_OPTIONS, includeDirs: [dir]});
    this.grpcObject = grpc.loadPackageDefinition(this.definition);
  }

  // The DescriptorProto of a fully qualified message name.
  descriptor(typeName) {
    const entry = this.definition[typeName];
    if (!entry || !entry.type || !entry.type.field) {
      throw new Error(`entroserve: no message ${typeName} in ${this.dir}`);
    }
    return entry.type;
  }

  // A field's message type, fully qualified ('RowError' in sampler.v1 ->
  // 'sampler.v1.RowError'; nested map entries -> their parent's scope).
  fieldType(typeName, field) {
    const pkg = typeName.slice(0, typeName.lastIndexOf('.'));
    const name = field.typeName.replace(/^\./, '');
    for (const candidate of [`${typeName}.${name}`, `${pkg}.${name}`, name]) {
      if (this.definition[candidate]) return candidate;
    }
    const nested = (this.descriptor(typeName).nestedType || []).find((t) => t.name === name);
    if (nested) return {nested};
    throw new Error(`entroserve: cannot resolve ${field.typeName} in ${typeName}`);
  }

  // Checks a message object given by a caller against `typeName`: snake_case
  // names become camelCase, unknown names are a TypeError naming the path.
  // Returns a new object; values that are not messages are left as given.
  checked(typeName, value, where) {
    if (value === undefined || value === null) return value;
    if (typeof value !== 'object' || Array.isArray(value)) {
      throw new TypeError(`${where} must be an object (${typeName})`);
    }
    const fields = this.descriptor(typeName).field;
    const out = {};
    for (const [key, v] of Object.entries(value)) {
      const camel = key.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase());
      const field = fields.find((f) => f.name === camel);
      if (!field) {
        throw new TypeError(`${where}: unknown field "${key}" of ${typeName} (fields: ` +
                            `${fields.map((f) => f.name).join(', ')})`);
      }
      if (camel in out) throw new TypeError(`${where}: field "${camel}" given twice`);
      out[camel] = this.checkedField(typeName, field, v, `${where}.${camel}`);
    }
    return out;
  }

  checkedField(typeName, field, value, where) {
    if (field.type !== 'TYPE_MESSAGE' || value === undefined || value === null) return value;
    const type = this.fieldType(typeName, field);
    if (typeof type === 'object') return value;  // a map<> entry: keys and values as given
    if (field.label === 'LABEL_REPEATED') {
      if (!Array.isArray(value)) throw new TypeError(`${where} must be an array`);
      return value.map((item, i) => this.checked(type, item, `${where}[${i}]`));
    }
    return this.checked(type, value, where);
  }

  // A decoded message as a plain object: only its fields (no oneof markers),
  // int64 as Number, uint64 as a decimal string, unset messages and unset
  // optional fields absent.
  plain(typeName, message) {
    if (message === null || message === undefined) return undefined;
    const out = {};
    for (const field of this.descriptor(typeName).field) {
      const value = message[field.name];
      if (value === undefined || value === null) continue;
      out[field.name] = this.plainField(typeName, field, value);
    }
    return out;
  }

  plainField(typeName, field, value) {
    const repeated = field.label === 'LABEL_REPEATED';
    const one = (v) => {
      switch (field.type) {
        case 'TYPE_INT64':
        case 'TYPE_SINT64':
        case 'TYPE_SFIXED64':
          return Number(v);
        case 'TYPE_UINT64':
        case 'TYPE_FIXED64':
          return String(v);
        case 'TYPE_MESSAGE': {
          const type = this.fieldType(typeName, field);
          return typeof type === 'object' ? v : this.plain(type, v);
        }
        default:
          return v;
      }
    };
    if (repeated && Array.isArray(value)) return value.map(one);
    if (repeated) return value;  // a map<>: an object already
    return one(value);
  }
}

function loadProtos(protoDir) {
  const dir = resolveProtoDir(protoDir);
  if (!loaded.has(dir)) loaded.set(dir, new Protos(dir));
  return loaded.get(dir);
}

module.exports = {loadProtos, resolveProtoDir, PROTO_FILES};
