// What deploy/ ships, checked against the built daemon: the systemd unit
// passes `systemd-analyze verify` (where systemd is installed) with the
// hardening the README promises; the Dockerfile's runtime stage installs a
// Debian package for every shared library the binaries need, and its build
// stage copies every folder the build reads. (No container is built here:
// the test machines have no Docker.)
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';

import { run, sourceDir, tempDir, webpushd, webpushctl } from './harness.mjs';

const unitText = readFileSync(path.join(sourceDir, 'deploy', 'webpushd.service'), 'utf8');
const dockerfile = readFileSync(path.join(sourceDir, 'deploy', 'Dockerfile'), 'utf8');

/** "Key=value" lines of a unit, by key (a key may repeat). */
function directives(text) {
  const out = new Map();
  for (const line of text.split('\n')) {
    const m = line.match(/^([A-Za-z]+)=(.*)$/);
    if (m) out.set(m[1], [...(out.get(m[1]) ?? []), m[2]]);
  }
  return out;
}

describe('deploy/', () => {
  test('the systemd unit passes systemd-analyze verify and is hardened', (t) => {
    const d = directives(unitText);
    const one = (k) => (d.get(k) ?? [])[0];
    assert.match(one('ExecStart'), /^\/usr\/local\/bin\/webpushd --config \/etc\/webpushd\/shop\.yaml --data-dir \/var\/lib\/webpushd$/);
    assert.equal(one('ExecReload'), '/bin/kill -HUP $MAINPID', 'SIGHUP reloads');
    assert.equal(one('Restart'), 'on-failure');
    assert.equal(one('RestartPreventExitStatus'), '2', 'an invalid config is not restarted in a loop');
    assert.equal(one('User'), 'webpushd');
    assert.equal(one('StateDirectory'), 'webpushd');
    assert.equal(one('StateDirectoryMode'), '0700');
    for (const [k, v] of [['NoNewPrivileges', 'yes'], ['ProtectSystem', 'strict'], ['ProtectHome', 'yes'], ['PrivateTmp', 'yes'],
      ['PrivateDevices', 'yes'], ['RestrictAddressFamilies', 'AF_UNIX AF_INET AF_INET6'], ['CapabilityBoundingSet', ''],
      ['MemoryDenyWriteExecute', 'yes'], ['SystemCallArchitectures', 'native']]) {
      assert.equal(one(k), v, k);
    }
    if (run('sh', ['-c', 'command -v systemd-analyze']).status !== 0) {
      t.skip('systemd-analyze not installed: the directives above are all that was checked');
      return;
    }
    // verify also checks that ExecStart's program exists: point it at this build.
    const dir = tempDir('webpushd-unit-');
    const unit = path.join(dir, 'webpushd.service');
    writeFileSync(unit, unitText.replace('/usr/local/bin/webpushd', webpushd));
    const verified = run('systemd-analyze', ['verify', unit]);
    assert.equal(verified.status, 0, verified.stdout + verified.stderr);
    assert.equal(verified.stderr.trim(), '', 'no warnings');
    const security = run('systemd-analyze', ['security', '--offline=true', unit]);
    if (security.status === 0) {
      const score = Number(security.stdout.match(/Overall exposure level for [^:]+: ([0-9.]+)/)?.[1]);
      assert.ok(score <= 2, `exposure ${score} (systemd's scale: 0 safest, 10 unprotected)`);
    }
  });

  test('the Dockerfile builds from folders that exist and installs the binaries\' shared libraries', () => {
    // The build stage: every folder CMake reads is copied in.
    const copied = new Set([...dockerfile.matchAll(/^COPY (\S+) \S+$/gm)].map((m) => m[1]));
    for (const needed of ['CMakeLists.txt', 'cmake', 'include', 'src', 'tools', 'web', 'schemas']) {
      assert.ok(copied.has(needed), `COPY ${needed}`);
    }
    assert.match(dockerfile, /^FROM debian:12 AS build$/m);
    assert.match(dockerfile, /^RUN tools\/bootstrap deps/m, 'the build packages come from tools/bootstrap');
    assert.match(dockerfile, /^USER webpushd$/m);
    assert.match(dockerfile, /^VOLUME \["\/var\/lib\/webpushd"\]$/m);
    assert.match(dockerfile, /^EXPOSE 8080$/m);
    assert.match(dockerfile, /^HEALTHCHECK .*\n\s+CMD curl -fsS -o \/dev\/null http:\/\/127\.0\.0\.1:8080\/healthz/m);

    // The runtime stage: a package for every library the binaries link directly.
    const runtime = dockerfile.slice(dockerfile.indexOf('FROM debian:12-slim'));
    const packages = new Set(runtime.match(/apt-get install[^&]*/)[0].split(/\s+/).filter((w) => /^[a-z0-9][a-z0-9.+-]+$/.test(w)));
    const base = new Set(['libc6', 'libstdc++6', 'libgcc-s1']);  // in debian:12-slim already
    for (const binary of [webpushd, webpushctl]) {
      const needed = run('sh', ['-c', `readelf -d '${binary}' | sed -n 's/.*(NEEDED).*\\[\\(.*\\)\\]/\\1/p'`]).stdout.trim().split('\n');
      assert.ok(needed.length > 5, `${binary}: ${needed}`);
      for (const lib of needed) {
        // A sanitizer build (tools/bootstrap test --sanitize) links its
        // runtime; the image builds without sanitizers.
        if (/^lib(asan|ubsan|lsan|tsan)\.so/.test(lib)) continue;
        // dpkg knows a file by the path its package installed it at: with
        // Debian 12's merged /usr that may be the /lib or the /usr/lib one.
        const owner = run('sh', ['-c', `p=$(ldconfig -p | awk -v l='${lib}' '$1 == l {print $NF; exit}'); r=$(readlink -f "$p");
          for c in "$p" "$r" "\${p#/usr}" "\${r#/usr}"; do dpkg -S "$c" 2>/dev/null && break; done | head -1 | cut -d: -f1`]).stdout.trim();
        assert.ok(owner, `no package owns ${lib}`);
        assert.ok(packages.has(owner) || base.has(owner), `${path.basename(binary)} needs ${lib} from ${owner}, which the runtime stage does not install`);
      }
    }
  });
});
