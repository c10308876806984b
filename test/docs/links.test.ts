import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';

const ROOT = join(import.meta.dirname, '../..');
const PAGES = ['README.md', 'CHANGELOG.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\- _]/gu, '')
    .replace(/ /g, '-');
}

/** The page's text outside fenced code blocks (links and headings in code are not markdown). */
function prose(markdown: string): string {
  return markdown.replace(/^```[\s\S]*?^```$/gm, '');
}

function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const result = new Set<string>();
  for (const [, heading] of prose(markdown).matchAll(/^#{1,6} (.*)$/gm)) {
    const base = slug(heading!);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    result.add(n === 0 ? base : `${base}-${n}`);
  }
  return result;
}

describe('documentation', function () {
  it('the README is a front page: at most 300 lines, linking every page under docs/', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const lines = readme.split('\n').length;
    assert.ok(lines <= 300, `README.md has ${lines} lines`);
    for (const page of PAGES.filter((p) => p.startsWith('docs/'))) {
      assert.ok(readme.includes(`](${page})`) || readme.includes(`](${page}#`), `README.md links ${page}`);
    }
  });

  it('the SDK guides show sdk/examples/merchant.mjs and receiver.mjs verbatim (the package test runs those files)', () => {
    for (const name of ['merchant', 'receiver']) {
      const source = readFileSync(join(ROOT, 'sdk/examples', `${name}.mjs`), 'utf8');
      assert.ok(readFileSync(join(ROOT, `docs/sdk-${name}.md`), 'utf8').includes('```js\n' + source + '```\n'), `docs/sdk-${name}.md shows sdk/examples/${name}.mjs verbatim`);
    }
  });

  it('every relative link and anchor in README.md, CHANGELOG.md and docs/ resolves', () => {
    const broken: string[] = [];
    for (const page of PAGES) {
      const text = readFileSync(join(ROOT, page), 'utf8');
      for (const [, target] of prose(text).matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/.test(target!)) continue;
        const [path, anchor] = target!.split('#') as [string, string | undefined];
        const file = path === '' ? join(ROOT, page) : join(ROOT, dirname(page), path);
        if (!existsSync(file)) {
          broken.push(`${page}: ${target} (no ${relative(ROOT, file)})`);
          continue;
        }
        if (anchor !== undefined && file.endsWith('.md') && !anchors(readFileSync(file, 'utf8')).has(anchor)) {
          broken.push(`${page}: ${target} (no heading for #${anchor})`);
        }
      }
    }
    assert.deepEqual(broken, []);
  });
});
