// npm passes SIGINT and SIGTERM on to the script it runs, but dies of SIGHUP (a closing terminal) or
// SIGKILL without a word to it, which would leave `nurture start` and its embedded services running on.
/**
 * Calls `gone` once, when the npm that launched this process (`npm start`, `npm run nurture`) has exited.
 * Started any other way (a supervisor, nohup, a shell) the process keeps running as it was asked to.
 */
export function whenLauncherExits(gone: () => void, pollMs = 250): void {
  if (!process.env.npm_lifecycle_event) return;
  const launcher = process.ppid;
  const timer = setInterval(() => {
    // Orphans are adopted by init or a subreaper: a changed parent means the launcher is gone.
    if (process.ppid === launcher) return;
    clearInterval(timer);
    gone();
  }, pollMs);
  timer.unref();
}
