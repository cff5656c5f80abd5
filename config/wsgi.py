import gc
import os
from importlib import import_module

from django.conf import settings
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
application = get_wsgi_application()

# What the process keeps for its whole life (apps, models, the URLconf and so every view,
# imported now rather than by the first request) goes where the collector no longer walks it.
# Left in the oldest generation, a 1,000-event batch's parsed request pushed a full collection
# over all of it every few requests: a third of a worker's CPU in api_bench.
import_module(settings.ROOT_URLCONF)
gc.freeze()
