"""Prefect flows: thin composition of ``cohortpool.tasks`` into the site, hub and nightly runs.

``site_edge`` runs at a hospital, ``hub`` at the consortium, ``nightly`` runs both for every configured
site. No rule lives here: every step is a task in :mod:`cohortpool.tasks` that calls one stage function.
"""
