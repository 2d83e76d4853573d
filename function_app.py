"""The Functions app: built here, its functions live in blueprints under leads/triggers/."""

import azure.functions as func

from leads.triggers import console, http, manage, queue, retention, timer

app = func.FunctionApp()
for blueprint in (http.bp, manage.bp, queue.bp, timer.bp, console.bp, retention.bp):
    app.register_functions(blueprint)
