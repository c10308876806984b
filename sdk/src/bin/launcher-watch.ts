/**
 * `npx pushhub` and `npx pushhub-receiver` run the program under `npm exec` and a shell that
 * does not exec it: a SIGTERM to npx ends npm and the shell, never the program, which lived on
 * as an orphan holding its port and database (issue 16). When npm started this process (it
 * sets `npm_command`), a change of parent means the launcher is gone: `onGone` then runs the
 * same clean stop as SIGTERM. Started any other way (systemd, a shell, `nohup`), nothing is
 * watched, so a process that is meant to outlive its shell still does.
 */
export function stopWhenLauncherExits(onGone: () => void, env: NodeJS.ProcessEnv = process.env, pollMs = 500): () => void {
  if (!env.npm_command) return () => {};
  const launcher = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === launcher) return;
    clearInterval(timer);
    onGone();
  }, pollMs);
  // The check alone must never keep the process alive.
  timer.unref();
  return () => clearInterval(timer);
}
