"""Command groups mounted on the main CLI; one line each."""


def register(app) -> None:
    from .studies.cli import app as study_app

    app.add_typer(study_app, name="study")
    from .active.cli import app as active_app

    app.add_typer(active_app, name="active", help="Active learning: query, label, retrain, simulate.")
    from .serve.cli import serve_command

    app.command("serve")(serve_command)
