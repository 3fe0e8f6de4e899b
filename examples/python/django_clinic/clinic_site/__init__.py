"""The Django project of the medsched example. Importing it loads the Celery
app, so `@shared_task` functions bind to it in web and worker processes."""

from clinic_site.celery import app as celery_app

__all__ = ["celery_app"]
