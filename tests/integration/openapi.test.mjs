// schemas/openapi.yaml describes the API the daemon implements: every route
// the daemon registers (src/api/handlers, src/app/daemon.cpp, the SDK's and the dashboard's files)
// is in it with the right security scheme, every path and method in it is
// answered by the running daemon (OPTIONS lists exactly those methods), and
// docs/API.md names the same routes. The YAML is read with the `yaml`
// package from tests/peers (Node has no YAML parser).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { sourceDir, startDaemon, stopChild, tempDir } from './harness.mjs';

const { parse } = createRequire(path.join(sourceDir, 'tests', 'peers', 'package.json'))('yaml');
const spec = parse(readFileSync(path.join(sourceDir, 'schemas', 'openapi.yaml'), 'utf8'));
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'];

/** "{anything}" → "{}", so /v1/deliveries/{id}/events and …/{delivery_id}/events compare equal. */
const shape = (p) => p.replace(/\{[^}]+\}/g, '{}');

/** Every operation in the spec: "METHOD /shape" → {path, method, op}. */
function specRoutes() {
  const out = new Map();
  for (const [p, item] of Object.entries(spec.paths)) {
    for (const m of METHODS) if (item[m]) out.set(`${m.toUpperCase()} ${shape(p)}`, { path: p, method: m, op: item[m] });
  }
  return out;
}

/** The routes registered with a literal path in the daemon's sources: "METHOD /shape" → access. */
function sourceRoutes() {
  const files = [
    ...readdirSync(path.join(sourceDir, 'src', 'api', 'handlers')).map((f) => path.join('src', 'api', 'handlers', f)),
    ...readdirSync(path.join(sourceDir, 'src', 'api')).filter((f) => f.endsWith('.cpp')).map((f) => path.join('src', 'api', f)),
    path.join('src', 'app', 'daemon.cpp'),
  ].filter((f) => f.endsWith('.cpp'));
  const out = new Map();
  for (const f of files) {
    const text = readFileSync(path.join(sourceDir, f), 'utf8');
    for (const m of text.matchAll(/\badd\(\s*"([A-Z]+)",\s*"(\/[^"]*)",\s*(?:api::)?access::(\w+)/g)) {
      out.set(`${m[1]} ${shape(m[2])}`, m[3]);
    }
  }
  return out;
}

/** Files under web/ (the SDK), as URL paths. */
function webFiles(dir = path.join(sourceDir, 'web'), prefix = '') {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory()
    ? webFiles(path.join(dir, e.name), `${prefix}/${e.name}`)
    : [`${prefix}/${e.name}`]));
}

/** Resolves an internal "$ref". */
function resolve(ref) {
  assert.match(ref, /^#\//, `only internal references: ${ref}`);
  let node = spec;
  for (const part of ref.slice(2).split('/')) {
    node = node?.[part.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  assert.ok(node !== undefined, `unresolved ${ref}`);
  return node;
}
function eachRef(node, fn) {
  if (Array.isArray(node)) node.forEach((n) => eachRef(n, fn));
  else if (node && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) { if (k === '$ref') fn(v); else eachRef(v, fn); }
  }
}
const deref = (node) => (node?.$ref ? deref(resolve(node.$ref)) : node);

describe('schemas/openapi.yaml', () => {
  let daemon;
  before(async () => {
    const dir = tempDir('webpushd-openapi-');
    const config = path.join(dir, 'webpushd.yaml');
    writeFileSync(config, 'server:\n  listen: 127.0.0.1:0\nstorage:\n  data_dir: data\nvapid:\n  subject: mailto:ops@shop.example\nlogging:\n  format: json\n');
    daemon = await startDaemon(config);
  });
  after(async () => { if (daemon) await stopChild(daemon.child); });

  test('is OpenAPI 3.0 with resolvable references, the error schema and the security schemes', () => {
    assert.match(spec.openapi, /^3\.0\.\d+$/);
    assert.ok(spec.info?.title && spec.info?.version);
    eachRef(spec, resolve);
    const schemes = spec.components.securitySchemes;
    assert.deepEqual(schemes.Bearer, { ...schemes.Bearer, type: 'http', scheme: 'bearer' });
    assert.deepEqual(schemes.Subscriber, { ...schemes.Subscriber, type: 'apiKey', in: 'header', name: 'Authorization' });
    assert.deepEqual(schemes.DashboardSession, { ...schemes.DashboardSession, type: 'apiKey', in: 'cookie', name: 'webpushd_session' });
    const error = spec.components.schemas.Error.properties.error;
    assert.deepEqual([...error.required].sort(), ['code', 'field', 'message']);
    for (const { path: p, method, op } of specRoutes().values()) {
      assert.ok(op.operationId, `${method} ${p} has an operationId`);
      for (const [status, response] of Object.entries(op.responses)) {
        const r = deref(response);
        assert.ok(r.description, `${method} ${p} ${status} has a description`);
        if (Number(status) >= 400) {
          const schema = r.content?.['application/json']?.schema;
          const refs = [];
          eachRef(schema, (ref) => refs.push(ref));
          assert.ok(refs.includes('#/components/schemas/Error'), `${method} ${p} ${status} answers the error schema`);
        }
      }
      if (['post', 'put'].includes(method)) {
        // JSON everywhere but the dashboard's login form (form-encoded, as a browser posts it).
        const content = deref(op.requestBody)?.content;
        assert.ok(content?.['application/json']?.schema ?? (p.startsWith('/dashboard/') && content?.['application/x-www-form-urlencoded']?.schema),
          `${method} ${p} has a JSON request body`);
      }
      for (const param of p.match(/\{[^}]+\}/g) ?? []) {
        const params = [...(spec.paths[p].parameters ?? []), ...(op.parameters ?? [])].map(deref);
        assert.ok(params.some((x) => x.in === 'path' && `{${x.name}}` === param), `${method} ${p} declares ${param}`);
      }
    }
  });

  test('every route registered in the sources is in it, with its security scheme, and nothing else', async () => {
    const registered = sourceRoutes();
    assert.ok(registered.size >= 15, `found only ${registered.size} route registrations`);
    // The SDK's and the dashboard's files are registered in a loop: take those the daemon serves.
    for (const file of webFiles()) {
      if ((await fetch(daemon.base + file)).status === 200) registered.set(`GET ${file}`, 'browser');
    }
    const documented = specRoutes();
    assert.deepEqual([...documented.keys()].sort(), [...registered.keys()].sort());
    for (const [route, who] of registered) {
      const { op } = documented.get(route);
      const schemes = (op.security ?? spec.security ?? []).flatMap((s) => Object.keys(s));
      const expected = { backend: ['Bearer'], subscriber: ['Subscriber'], reader: ['Bearer', 'DashboardSession'] }[who] ?? [];
      assert.deepEqual(schemes, expected, `${route} (access::${who})`);
    }
  });

  test('the running daemon answers every path in it with exactly its methods', async () => {
    for (const [p, item] of Object.entries(spec.paths)) {
      const url = p.replace(/\{[^}]+\}/g, 'x1');
      const res = await fetch(daemon.base + url, { method: 'OPTIONS' });
      assert.equal(res.status, 204, `OPTIONS ${url}: ${await res.text()}`);
      const methods = METHODS.filter((m) => item[m]).map((m) => m.toUpperCase());
      if (methods.includes('GET')) methods.push('HEAD');
      methods.push('OPTIONS');
      assert.deepEqual(res.headers.get('allow').split(', ').sort(), methods.sort(), p);
    }
  });

  test('docs/API.md lists the same routes', () => {
    const doc = readFileSync(path.join(sourceDir, 'docs', 'API.md'), 'utf8');
    const listed = new Set();
    for (const m of doc.matchAll(/^\| `(GET|POST|PUT|DELETE|PATCH) (\/[^`\s]+)`/gm)) listed.add(`${m[1]} ${shape(m[2].split('?')[0])}`);
    // The SDK's and the dashboard's files are described in README and web/*/README.md.
    const documented = [...specRoutes().keys()].filter((r) => !r.includes(' /sdk/') && !/ \/dashboard\/.*\.(js|css)$/.test(r));
    assert.deepEqual([...listed].sort(), documented.sort());
  });
});
