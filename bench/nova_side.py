"""Nova's own GET /os-services, timed in-process; run by the Python of the Nova 34.0.0 venv
(tests/conformance/oracles.py), never imported by the exporter.

What is measured: the request through Nova's compute API router (APIRouterV21: routing,
microversion 2.11, policy check, ServiceController.index, JSON serialization) with an admin
context put in the WSGI environ where keystonemiddleware and NovaKeystoneContext would put it.
The cells are read by Nova itself (scatter-gather over the cell mappings of the API database),
zones set from the aggregates, and each service judged by the servicegroup DB driver.

Prints one JSON object: {"seconds": [...], "services": N, "up": N, "bytes": N}.
"""

import argparse
import json
import sys
import time

# NOTE: as Nova's own WSGI entry point of the compute API does (nova/wsgi/osapi_compute.py).
from nova import monkey_patch

monkey_patch.patch(backend="threading")  # noqa: E402,E702


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config-file", required=True)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1, help="requests first made and not counted")
    args = parser.parse_args()

    from nova import config, context, objects
    from nova.api.openstack.compute import routes

    config.parse_args(["nova-api", "--config-file", args.config_file], init_rpc=True)
    objects.register_all()
    router = routes.APIRouterV21()

    import webob

    seconds, body = [], b""
    for _ in range(args.warmup + args.repeat):  # warm-up requests fill Nova's engines and caches
        request = webob.Request.blank(
            "/os-services", headers={"OpenStack-API-Version": "compute 2.11", "Accept": "application/json"}
        )
        request.environ["nova.context"] = context.RequestContext(
            user_id="bench", project_id="bench", roles=["admin", "member", "reader"], is_admin=True
        )
        started = time.perf_counter()
        response = request.get_response(router)
        body = response.body
        seconds.append(time.perf_counter() - started)
        if response.status_int != 200:
            print(json.dumps({"error": f"HTTP {response.status}: {body[:500].decode(errors='replace')}"}))
            return 1
    services = json.loads(body)["services"]
    print(
        json.dumps(
            {
                "seconds": seconds[args.warmup :],
                "services": len(services),
                "up": sum(s["state"] == "up" for s in services),
                "bytes": len(body),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
