"""python3 -m bench {run,soak,whatif,projects,attacks,report}: see bench/RESULTS.md for what each measures."""

from __future__ import annotations

import argparse
import pathlib
import shlex
import sys
import tempfile
import time

from . import report


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python3 -m bench")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="every figure of RESULTS.md, per size")
    run.add_argument("--sizes", default="1000,10000,100000", help="comma-separated: 1000, 10000, 100000")
    run.add_argument("--no-nova", action="store_true", help="skip Nova's own GET /os-services")
    run.add_argument("--profile-at", type=int, default=10000, help="size to profile with py-spy (0: none)")
    run.add_argument("--profile-seconds", type=float, default=12)
    soak = commands.add_parser("soak", help="concurrent scrapers for a while, a cell server stopped and restarted")
    soak.add_argument("--scrapers", type=int, default=50)
    soak.add_argument("--duration", type=float, default=180)
    soak.add_argument("--size", type=int, default=10000)
    soak.add_argument("--driver", choices=("mysqldb", "pymysql"), default="mysqldb")
    whatif = commands.add_parser("whatif", help="changes proposed outside bench/, patched in and measured")
    whatif.add_argument("--sizes", default="10000,100000")
    projects_cmd = commands.add_parser(
        "projects", help="Nova alone and with the other projects beside it; cost per row"
    )
    projects_cmd.add_argument("--baseline", help="a git revision whose exporter serves Nova alone too, side by side")
    attacks = commands.add_parser("attacks", help="the HTTP attacks at full size while a normal scrape is timed")
    attacks.add_argument("--baseline", help="a git revision whose exporter is attacked too, side by side")
    commands.add_parser("report", help="write RESULTS.md again from bench/results/*.json")
    args = parser.parse_args(argv)

    if args.command == "report":
        report.write()
        return 0
    from .servers import start_mariadb

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        workdir = pathlib.Path(tmp)
        db = start_mariadb(workdir / "mariadb")
        try:
            if args.command == "run":
                from . import run as runner

                sizes = [int(s) for s in args.sizes.split(",") if s]
                unknown = [s for s in sizes if s not in runner.SIZES]
                if unknown:
                    parser.error(f"unknown sizes {unknown}: choose among {sorted(runner.SIZES)}")
                machine = report.machine(db)
                results = runner.run(
                    db, workdir, sizes, not args.no_nova, args.profile_at or None, args.profile_seconds, log
                )
                results.update(
                    machine=machine, seconds=time.monotonic() - started, command="python3 -m bench " + shlex.join(argv)
                )
                report.save("run", results)
            elif args.command == "projects":
                from . import projects

                results = projects.measure(db, workdir, log, args.baseline)
                results.update(machine=report.machine(db), command="python3 -m bench " + shlex.join(argv))
                report.save("projects", results)
            elif args.command == "attacks":
                from . import attacks as attacker

                results = attacker.attacks(db, workdir, args.baseline, log)
                results.update(machine=report.machine(db), command="python3 -m bench " + shlex.join(argv))
                report.save("attacks", results)
            elif args.command == "whatif":
                from . import whatif as patched

                results = patched.whatif(db, workdir, [int(s) for s in args.sizes.split(",") if s], log)
                report.save("whatif", results)
            else:
                from . import soak as soaker

                results = soaker.soak(db, workdir, args.size, args.scrapers, args.duration, args.driver, log)
                report.save("soak", results)
        finally:
            db.stop()
    report.write()
    log(
        f"done in {time.monotonic() - started:.0f} s; see {report.RESULTS_MD.relative_to(pathlib.Path.cwd())}"
        if report.RESULTS_MD.is_relative_to(pathlib.Path.cwd())
        else "done"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
