// Validates Kubernetes manifests offline against the Kubernetes OpenAPI schema:
// each object through the JSON-schema validator of its kind from the pinned
// npm package kubernetes-models (@kubernetes-models/prometheus-operator for
// ServiceMonitor), plus a strict pass that rejects fields the schema does not
// define (the API server does that with strict field validation; the JSON
// schemas alone accept any extra field, so a typo such as
// readOnlyRootFileSystem would pass). The field names come from the
// packages' TypeScript declarations, which are generated from the same schema.
//
//   node validate.mjs FILE.yaml...     (multi-document YAML, e.g. kubectl kustomize output)
//   node validate.mjs --self-test      (known-bad objects must be rejected)
// Exit status 0 when every object is valid.
import fs from 'node:fs';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import YAML from 'yaml';

const here = path.dirname(fileURLToPath(import.meta.url));

// --- the model class of an apiVersion and kind ---------------------------
const CRD_PACKAGES = {'monitoring.coreos.com': '@kubernetes-models/prometheus-operator'};

function modulePath(apiVersion) {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  if (CRD_PACKAGES[group]) return `${CRD_PACKAGES[group]}/${group}/${version}`;
  return group ? `kubernetes-models/${group}/${version}` : `kubernetes-models/${version}`;
}

async function modelClass(apiVersion, kind) {
  let mod;
  try {
    mod = await import(modulePath(apiVersion));
  } catch (e) {
    throw new Error(`no schema for apiVersion ${apiVersion} (${e.code || e.message})`);
  }
  if (!mod[kind]) throw new Error(`no schema for kind ${kind} in ${apiVersion}`);
  return mod[kind];
}

// --- field names from the TypeScript declarations ------------------------
// A small parser for the declaration files' type syntax: object literals,
// Array<T>, unions, string literals, named types resolved through imports.
function declarationFile(spec, fromFile) {
  let base;
  if (spec.startsWith('.')) {
    base = path.resolve(path.dirname(fromFile), spec);
  } else {  // a package path: its folders mirror the type names
    base = path.join(here, 'node_modules', spec);
  }
  return `${base.replace(/\.(m?js|d\.ts)$/, '')}.d.ts`;
}

const files = new Map();  // path -> {imports, aliases, decls}
function loadFile(file) {
  if (files.has(file)) return files.get(file);
  const text = fs.readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/[^\n]*/g, '');
  const info = {file, text, imports: new Map(), aliases: new Map(), decls: new Map()};
  for (const m of text.matchAll(/import\s*\{([^}]*)\}\s*from\s*"([^"]+)"/g)) {
    for (const part of m[1].split(',')) {
      const [orig, as] = part.trim().split(/\s+as\s+/);
      if (orig) info.imports.set((as || orig).trim(), {name: orig.trim(), spec: m[2]});
    }
  }
  for (const m of text.matchAll(/export\s*\{([^}]*)\}/g)) {
    for (const part of m[1].split(',')) {
      const [orig, as] = part.trim().split(/\s+as\s+/);
      if (as) info.aliases.set(as.trim(), orig.trim());
    }
  }
  for (const m of text.matchAll(/export\s+(?:declare\s+)?(interface|type)\s+(\w+)(?:\s+extends\s+([\w, ]+))?\s*(=|\{)/g)) {
    info.decls.set(m[2], {kind: m[1], extendsNames: m[3], start: m.index + m[0].length - 1});
  }
  files.set(file, info);
  return info;
}

class Parser {
  constructor(info, pos) { this.info = info; this.s = info.text; this.i = pos; }
  ws() { while (this.i < this.s.length && /\s/.test(this.s[this.i])) this.i++; }
  peek(str) { this.ws(); return this.s.startsWith(str, this.i); }
  eat(str) {
    this.ws();
    if (!this.s.startsWith(str, this.i)) throw new Error(`${this.info.file}: expected ${str} at ${this.i}: ${this.s.slice(this.i, this.i + 40)}`);
    this.i += str.length;
  }
  type() {
    const members = [this.primary()];
    while (this.peek('|')) { this.eat('|'); members.push(this.primary()); }
    return members.length === 1 ? members[0] : {union: members};
  }
  primary() {
    this.ws();
    const c = this.s[this.i];
    let t;
    if (c === '{') t = this.object();
    else if (c === '"' || c === "'") { const end = this.s.indexOf(c, this.i + 1); this.i = end + 1; t = {leaf: true}; }
    else if (c === '(') { this.eat('('); t = this.type(); this.eat(')'); }
    else if (/[-\d]/.test(c)) { while (/[-\d.]/.test(this.s[this.i])) this.i++; t = {leaf: true}; }
    else {
      const m = /^[\w.$]+/.exec(this.s.slice(this.i));
      if (!m) throw new Error(`${this.info.file}: cannot parse type at ${this.s.slice(this.i, this.i + 40)}`);
      this.i += m[0].length;
      if (m[0] === 'Array' && this.peek('<')) { this.eat('<'); const item = this.type(); this.eat('>'); t = {array: item}; }
      else if (['string', 'number', 'boolean', 'any', 'unknown', 'null', 'object', 'undefined', 'true', 'false'].includes(m[0])) t = {leaf: true};
      else t = {ref: m[0], info: this.info};
      while (this.peek('[')) {  // T["field"] or T[]
        this.eat('[');
        if (this.peek(']')) { this.eat(']'); t = {array: t}; continue; }
        this.type(); this.eat(']'); t = {leaf: true};
      }
    }
    return t;
  }
  object() {
    this.eat('{');
    const props = new Map();
    let index = null;
    while (!this.peek('}')) {
      if (this.peek('[')) {
        this.eat('['); this.type(); this.eat(':'); this.type(); this.eat(']'); this.eat(':');
        index = this.type();
      } else {
        this.ws();
        let name;
        if (this.s[this.i] === '"') { const end = this.s.indexOf('"', this.i + 1); name = this.s.slice(this.i + 1, end); this.i = end + 1; }
        else { const m = /^[\w$]+/.exec(this.s.slice(this.i)); name = m[0]; this.i += name.length; }
        if (this.peek('?')) this.eat('?');
        this.eat(':');
        props.set(name, this.type());
      }
      this.ws();
      if (this.s[this.i] === ';' || this.s[this.i] === ',') this.i++;
    }
    this.eat('}');
    return {object: props, index};
  }
}

const resolved = new Map();
function resolveRef(name, info) {
  const key = `${info.file}#${name}`;
  if (resolved.has(key)) return resolved.get(key);
  resolved.set(key, {leaf: true});  // guards recursive types (JSONSchemaProps)
  let t = {leaf: true};
  const local = info.aliases.get(name) || name;
  if (info.decls.has(local)) {
    const d = info.decls.get(local);
    const p = new Parser(info, d.start);
    if (d.kind === 'type') p.eat('=');
    t = p.type();
    if (d.extendsNames && t.object) {  // TypeMeta: apiVersion and kind
      t.object.set('apiVersion', {leaf: true});
      t.object.set('kind', {leaf: true});
    }
  } else if (info.imports.has(name)) {
    const imp = info.imports.get(name);
    if (!imp.spec.startsWith('@kubernetes-models/base')) {
      t = resolveRef(imp.name, loadFile(declarationFile(imp.spec, info.file)));
    }
  }
  resolved.set(key, t);
  return t;
}

function strictCheck(value, type, where, errors) {
  if (value === null || value === undefined || !type) return;
  if (type.ref) type = resolveRef(type.ref, type.info);
  if (type.union) {
    const structured = type.union.map(m => (m.ref ? resolveRef(m.ref, m.info) : m)).filter(m => !m.leaf);
    if (structured.length === 1) strictCheck(value, structured[0], where, errors);
    return;
  }
  if (type.array) {
    if (Array.isArray(value)) value.forEach((v, i) => strictCheck(v, type.array, `${where}[${i}]`, errors));
    return;
  }
  if (type.object && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) {
      if (type.object.has(k)) strictCheck(v, type.object.get(k), `${where}.${k}`, errors);
      else if (type.index) strictCheck(v, type.index, `${where}.${k}`, errors);
      else errors.push(`${where}.${k}: unknown field`);
    }
  }
}

function declarationOf(apiVersion, kind) {
  const file = declarationFile(`${modulePath(apiVersion)}/${kind}`, path.join(here, 'x'));
  return resolveRef(`I${kind}`, loadFile(file));
}

// --- one object ------------------------------------------------------------
export async function validateObject(obj) {
  const errors = [];
  if (!obj || !obj.apiVersion || !obj.kind) return ['not a Kubernetes object (apiVersion and kind)'];
  let Cls;
  try {
    Cls = await modelClass(obj.apiVersion, obj.kind);
  } catch (e) {
    return [e.message];
  }
  try {
    new Cls(obj).validate();
  } catch (e) {
    errors.push(...String(e.message).split(', ').map(s => s.replace(/^data/, '')));
  }
  strictCheck(obj, declarationOf(obj.apiVersion, obj.kind), '', errors);
  return errors;
}

async function validateFiles(paths) {
  let bad = 0, total = 0;
  for (const p of paths) {
    let count = 0, badHere = 0;
    const docs = YAML.parseAllDocuments(fs.readFileSync(p, 'utf8'));
    for (const doc of docs) {
      if (doc.errors.length) { console.log(`${p}: YAML: ${doc.errors[0].message}`); badHere++; continue; }
      const obj = doc.toJS();
      if (obj === null) continue;
      count++;
      const errors = await validateObject(obj);
      const name = `${obj.kind}/${obj.metadata && obj.metadata.name}`;
      if (errors.length) {
        badHere++;
        for (const e of errors) console.log(`${p}: ${name}: ${e}`);
      }
    }
    if (count === 0) { console.log(`${p}: no objects`); badHere++; }
    console.log(`    ${path.basename(p).padEnd(55)} ${count - badHere} of ${count} objects valid`);
    bad += badHere;
    total += count;
  }
  return {bad, count: total};
}

async function selfTest() {
  const pod = (container, extra = {}) => ({
    apiVersion: 'v1', kind: 'Pod', metadata: {name: 'x'},
    spec: {containers: [{name: 'c', image: 'i', ...container}], ...extra}});
  const cases = [
    ['valid Pod', pod({securityContext: {readOnlyRootFilesystem: true}}), true],
    ['misspelt field', pod({securityContext: {readOnlyRootFileSystem: true}}), false],
    ['unknown field at the top', {...pod({}), extra: 1}, false],
    ['bad quantity', pod({resources: {limits: {cpu: 'two'}}}), false],
    ['gRPC probe without port', pod({livenessProbe: {grpc: {service: 's'}}}), false],
    ['unknown field in a list item', pod({env: [{name: 'A', valu: 'b'}]}), false],
    ['unknown field under a map value', pod({}, {volumes: [{name: 'v', emptyDir: {medium: 'Memory', size: '1Gi'}}]}), false],
    ['valid ServiceMonitor', {apiVersion: 'monitoring.coreos.com/v1', kind: 'ServiceMonitor', metadata: {name: 'm'},
      spec: {selector: {}, endpoints: [{port: 'metrics'}]}}, true],
    ['ServiceMonitor with unknown field', {apiVersion: 'monitoring.coreos.com/v1', kind: 'ServiceMonitor', metadata: {name: 'm'},
      spec: {selector: {}, endpoints: [{port: 'metrics', intervall: '15s'}]}}, false],
    ['unknown kind', {apiVersion: 'v1', kind: 'Nope', metadata: {name: 'n'}}, false],
  ];
  let failed = 0;
  for (const [what, obj, valid] of cases) {
    const errors = await validateObject(obj);
    const ok = (errors.length === 0) === valid;
    if (!ok) failed++;
    console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}: ${errors.length ? errors.join('; ') : 'valid'}`);
  }
  return failed;
}

const args = process.argv.slice(2);
if (args[0] === '--self-test') {
  const failed = await selfTest();
  process.exit(failed ? 1 : 0);
} else if (args.length === 0) {
  console.error('usage: node validate.mjs FILE.yaml... | --self-test');
  process.exit(2);
} else {
  const {bad, count} = await validateFiles(args);
  console.log(`${count - bad} of ${count} objects valid in ${args.length} file(s)`);
  process.exit(bad ? 1 : 0);
}
