"""STAND-IN for Neutron's port API (``GET /v2.0/ports`` and version
discovery only), run as its own process:
``python -m tests.prometheus.neutron_standin <port> <ports.json> <calls>``.

Neutron does not run on this machine. openstacksdk talks to this over HTTP
as it would to Neutron. Each port listing appends a line to *calls*; the
ports are re-read from *ports.json* on every request.
"""

import json
import sys
import wsgiref.simple_server


class Quiet(wsgiref.simple_server.WSGIRequestHandler):
    def log_message(self, *a):
        pass


def make_app(base, ports_path, calls_path):
    def app(environ, start_response):
        path = environ['PATH_INFO'].rstrip('/')
        if path.endswith('/ports'):
            with open(calls_path, 'a') as f:
                f.write(environ.get('QUERY_STRING', '') + '\n')
            with open(ports_path) as f:
                body = {'ports': json.load(f)}
        elif path in ('', '/v2.0'):
            body = {'versions': [{'id': 'v2.0', 'status': 'CURRENT',
                                  'links': [{'rel': 'self',
                                             'href': base + '/v2.0/'}]}]}
        else:
            start_response('404 Not Found', [])
            return [b'']
        data = json.dumps(body).encode()
        start_response('200 OK', [('Content-Type', 'application/json')])
        return [data]
    return app


def main():
    port, ports_path, calls_path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    httpd = wsgiref.simple_server.make_server(
        '127.0.0.1', port,
        make_app('http://127.0.0.1:%d' % port, ports_path, calls_path),
        handler_class=Quiet)
    httpd.serve_forever()


if __name__ == '__main__':
    main()
