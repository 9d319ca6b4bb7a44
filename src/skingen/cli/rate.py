"""Human-evaluation commands: rate serve, rate report."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from skingen.console import console, note, print_table, progress_bar, user_errors

from skingen.cli.app import app
from skingen.cli.options import OldFake, renamed


rate_app = typer.Typer(no_args_is_help=True, help="Blinded human evaluation: a rating web app and its report.")
app.add_typer(rate_app, name="rate")


@rate_app.command("serve")
def rate_serve(
    study: Path = typer.Option(..., "--study", help="Study folder: created on first use, continued afterwards."),
    real: Optional[str] = typer.Option(None, "--real", help="Real images: DATA[:split] (a prepared folder) or an image folder."),
    synthetic: list[str] = typer.Option([], "--synthetic", help="Synthetic images: [NAME=]DIR (NAME defaults to the "
                                        "manifest's model); repeat for more."),
    fake: OldFake = [],
    mode: list[str] = typer.Option([], "--mode", help="single (real or synthetic?), pair (which is real?), likert (how realistic?); "
                                   "repeat for several, in the order raters see them (default: all three)."),
    n: Optional[int] = typer.Option(None, "--n", help="Images (or pairs) per synthetic set and mode (default 10)."),
    size: Optional[int] = typer.Option(None, help="Display size in px (default: the smallest size among the images)."),
    seed: Optional[int] = typer.Option(None, help="Seed for drawing the images and each rater's order (default 0)."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on; anything but loopback needs --allow-remote."),
    port: int = typer.Option(8000, help="Port to listen on."),
    allow_remote: bool = typer.Option(False, "--allow-remote", help="Allow a non-loopback --host (raters then need an access code)."),
    access_code: Optional[str] = typer.Option(None, "--access-code", help="Code raters must enter (default: none on loopback, "
                                              "a random one printed here otherwise)."),
    ssl_certfile: Optional[Path] = typer.Option(None, "--ssl-certfile", help="TLS certificate (PEM): serve https, so the access "
                                                "code and session cookie are not sent in clear over a network."),
    ssl_keyfile: Optional[Path] = typer.Option(None, "--ssl-keyfile", help="TLS private key (PEM) for --ssl-certfile."),
    allowed_host: list[str] = typer.Option([], "--allowed-host", help="Another Host name raters use to reach the server "
                                           "(e.g. a DNS name); repeat for more. Default: the --host address (and, for "
                                           "0.0.0.0, this machine's names), plus localhost on loopback."),
    forwarded_allow_ips: Optional[str] = typer.Option(None, "--forwarded-allow-ips", help="Comma list of reverse-proxy "
                                                      "addresses whose X-Forwarded-For is believed (default: none; the "
                                                      "TCP peer is the client, so the header cannot dodge the code limit)."),
) -> None:
    """Serve a blinded rating study in the browser (create it from --real and --synthetic on first use)."""
    from skingen.rating.app import LOOPBACK, check_host, create_app
    from skingen.rating.guards import check_listen, check_proxies, served_hosts
    from skingen.rating.study import create_or_continue

    with user_errors():
        https = check_listen(port, ssl_certfile, ssl_keyfile)
        check_proxies(forwarded_allow_ips)
        code = check_host(host, allow_remote, access_code)
        with progress_bar("study images") as progress:
            definition, created = create_or_continue(study, real, renamed("--fake", fake, "--synthetic", synthetic), dict(
                modes=mode or None, n=n, size=size, seed=seed), progress)
        app_ = create_app(study, access_code=code, https=https, hosts=served_hosts(host, allowed_host))
    counts = ", ".join(f"{m} {sum(c.values()) if m != 'pair' else sum(c.values()) // 2}"
                       for m, c in definition["counts"].items())
    console.print(f"{'created' if created else 'continuing'} study {escape(str(study))}: {counts} questions per rater, "
                  f"images at {definition['display_size']} px", highlight=False)
    if code:
        console.print(f"access code: [bold]{escape(code)}[/]", highlight=False)
    if host not in LOOPBACK and not https:
        console.print("[yellow]note:[/] plain http off loopback: the access code and session cookie cross the network "
                      "in clear; give --ssl-certfile/--ssl-keyfile on a network you do not trust", highlight=False)
    console.print(f"raters open [bold]{'https' if https else 'http'}://{host if ':' not in host else f'[{host}]'}:{port}/[/] — Ctrl-C stops "
                  f"(answers are saved as they come; serve again to continue)", highlight=False)
    import uvicorn

    from skingen.rating.guards import idle_timeout_protocol

    # uvicorn believes X-Forwarded-For from 127.0.0.1 by default: only with a named proxy here
    uvicorn.run(app_, host=host, port=port, log_level="warning", http=idle_timeout_protocol(),
                proxy_headers=forwarded_allow_ips is not None,
                forwarded_allow_ips=forwarded_allow_ips, server_header=False,
                ssl_certfile=str(ssl_certfile) if https else None, ssl_keyfile=str(ssl_keyfile) if https else None)


@rate_app.command("report")
def rate_report(
    study: Path = typer.Argument(..., help="Study folder (from `skingen rate serve`)."),
    out: Path = typer.Option(..., "--out", help="New report folder (must not exist or be empty)."),
    top: int = typer.Option(8, min=1, max=10_000, help="Most mistaken images shown of each kind."),
    min_answers: Optional[int] = typer.Option(None, "--min-answers", min=1, max=100_000, help="Answers a rater needs "
                                              "to count (raters with fewer are left out of every table, and the report "
                                              "says so) (default: 5)."),
) -> None:
    """Raters' accuracy (Wilson 95%, binomial test vs 50%), fooling rates, Likert means, agreement, per skin tone."""
    from skingen.rating.report import console_rows, write_report
    from skingen.rating.results import MIN_ANSWERS, build_report

    with user_errors():
        report = build_report(study, top=top, min_answers=min_answers or MIN_ANSWERS)
        path = write_report(report, out)
    for text in report.notes:
        note(text)
    if report.summary:
        print_table(*console_rows(report), title=f"rating study {study} ({len(report.answers)} answers, "
                    f"{len(report.raters)} raters)", keys=3)
    console.print(f"open {path}", highlight=False)
