"""The call page (``static/``) as package data; its JS library is ``parley_web.lib``.

The gateway serves both from wherever this distribution is installed
(``importlib.resources``): ``/`` and ``/voice`` are ``static/index.html``, ``/static/`` is
this folder and ``/static/lib/`` the library.
"""
