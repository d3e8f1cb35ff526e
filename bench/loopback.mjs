// Preloaded into the Portkey gateway (node --import) so that it listens on
// 127.0.0.1 only. Its start script calls listen(port) with no host, which
// Node binds to every interface, and it has no option to choose the host.
import net from "node:net";

const listen = net.Server.prototype.listen;

net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === "number" && (args.length === 1 || args[1] === undefined || typeof args[1] === "function")) {
    const callback = typeof args[1] === "function" ? args[1] : args[2];
    return listen.call(this, args[0], "127.0.0.1", callback);
  }
  return listen.apply(this, args);
};
