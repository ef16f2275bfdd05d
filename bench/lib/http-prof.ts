/**
 * Preloaded into `sidereal serve` by bench/http.ts --prof DIR (NODE_OPTIONS
 * `--import`, since `--cpu-prof` is not allowed there): a V8 CPU profile of
 * the whole daemon's life, written to $SIDEREAL_PROF_DIR on exit.
 */
import { Session } from 'node:inspector';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.env.SIDEREAL_PROF_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 500 });
  session.post('Profiler.start');
  process.on('exit', () => {
    // The main thread's session answers synchronously, so this runs before exit.
    session.post('Profiler.stop', (err, res) => {
      if (!err) writeFileSync(join(dir, `sidereal-${process.pid}.cpuprofile`), JSON.stringify(res.profile));
    });
  });
}
