"""The schedule of in-process jobs and the worker process that runs them without the web server."""
