'use strict';
// h2proxy.js - an HTTP/2-only TLS front for test/apiserver/apiserver.py (which speaks only
// HTTP/1.1), for the informer's HTTP/2 test. Node's own http2 module (a real HTTP/2 server:
// ALPN "h2" only, so a client that does not negotiate HTTP/2 cannot connect at all) forwards
// every stream to the apiserver on loopback and streams the answer back (watches included).
//
//   node h2proxy.js UPSTREAM_PORT CERT KEY PORT_FILE STATS_FILE
//
// Listens on 127.0.0.1 (ephemeral port, written to PORT_FILE once listening) and keeps
// STATS_FILE current (written atomically): {"sessions": TCP connections, "streams": requests,
// "perSession": [{"streams", "open", "maxOpen"}]}. Exits on SIGTERM.
const http2 = require('http2');
const http = require('http');
const fs = require('fs');

const [, , upstreamPort, cert, key, portFile, statsFile] = process.argv;
const stats = { sessions: 0, streams: 0, perSession: [] };
const hop = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade',
	'proxy-connection', 'te', 'host', 'http2-settings']);

function writeAtomic(path, text) {
	fs.writeFileSync(path + '.tmp', text);
	fs.renameSync(path + '.tmp', path);
}

function save() {
	writeAtomic(statsFile, JSON.stringify(stats));
}

const server = http2.createSecureServer({
	cert: fs.readFileSync(cert), key: fs.readFileSync(key), allowHTTP1: false,
});

server.on('session', (session) => {
	const me = { streams: 0, open: 0, maxOpen: 0 };
	stats.sessions++;
	stats.perSession.push(me);
	save();
	session.on('stream', (stream, headers) => {
		stats.streams++;
		me.streams++;
		me.open++;
		me.maxOpen = Math.max(me.maxOpen, me.open);
		save();
		const h = {};
		for (const [k, v] of Object.entries(headers))
			if (!k.startsWith(':') && !hop.has(k))
				h[k] = v;
		h.host = headers[':authority'] || '127.0.0.1';
		const req = http.request({
			host: '127.0.0.1', port: Number(upstreamPort), method: headers[':method'],
			path: headers[':path'], headers: h,
		}, (res) => {
			const rh = { ':status': res.statusCode };
			for (const [k, v] of Object.entries(res.headers))
				if (!hop.has(k))
					rh[k] = v;
			if (!stream.destroyed)
				stream.respond(rh);
			res.pipe(stream);
			res.on('error', () => stream.destroy());
		});
		req.on('error', () => {
			if (!stream.destroyed)
				stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
		});
		stream.on('close', () => {
			me.open--;
			save();
			req.destroy();
		});
		stream.pipe(req);
	});
});

server.listen(0, '127.0.0.1', () => writeAtomic(portFile, String(server.address().port)));
process.on('SIGTERM', () => process.exit(0));
