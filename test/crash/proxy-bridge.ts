/**
 * Run inside the crash test's server namespace: 127.0.0.1:PORT there leads to the unix socket
 * of the test's mirror proxy (test/crash/roots.ts), on this host. That is the only way out of
 * the namespace, and the proxy forwards to the Debian mirror alone.
 *
 *   node proxy-bridge.js SOCKET PORT
 */
import net from 'node:net';

const [socket, port] = process.argv.slice(2);
net.createServer((c) => {
  const u = net.connect(socket!);
  c.pipe(u).pipe(c);
  const end = () => { c.destroy(); u.destroy(); };
  c.on('error', end);
  u.on('error', end);
}).listen(Number(port), '127.0.0.1', () => process.stdout.write('ready\n'));
