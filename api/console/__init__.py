"""The web console: server-rendered pages under `/console` of the API app, Vietnamese first, English on request.

Plain HTML forms and one stylesheet, no script. `mount_console(app)` serves it (see `api.console.app`); the
pages are in `api.console.pages`, their strings in `api.console.i18n`, the navigation (the place to add a page)
in `api.console.nav`.
"""

from .app import PREFIX, build_console, mount_console

__all__ = ["PREFIX", "build_console", "mount_console"]
