from omnimini.cli import app

app()
