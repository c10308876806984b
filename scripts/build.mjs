// npm run build: compiles the hub to dist/ so it runs on plain node (no TypeScript loader at
// run time), and copies what tsc does not: the protoset served by reflection.
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';

const root = new URL('../', import.meta.url);
// A fresh dist/: a file deleted from src must not live on in the build.
rmSync(new URL('dist/', root), { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
mkdirSync(new URL('dist/src/gen/', root), { recursive: true });
copyFileSync(new URL('src/gen/pushhub.binpb', root), new URL('dist/src/gen/pushhub.binpb', root));
// The `pushhub` bin: tsc keeps main.ts's shebang but not an executable bit.
chmodSync(new URL('dist/src/main.js', root), 0o755);
