"""The static markup of the Build page (/datasets/build; ``static/build.js`` fills it), apart
from ``bodies.py`` so that neither file grows past a screenful of pages: the same rules as
there (ids its script and the browser tests find, no data)."""

from __future__ import annotations

BUILD = """    <p class="lead">Build a dataset on this server's disk: add classes, then drop images, a zip or a folder into each, or capture
      them from the camera. It is an ordinary folder (one sub-folder per class) that <code>sightline train</code> reads too.
      Nothing is deleted: a removed image or class is set aside in the folder's quarantine, and Undo puts it back.</p>
    <div class="error-box" id="build-error" role="alert" hidden></div>
    <form class="card" id="new-dataset" novalidate>
      <div class="inline-form">
        <label class="field">New dataset
          <input type="text" id="new-dataset-name" maxlength="64" placeholder="e.g. my-pets" autocomplete="off"></label>
        <button type="submit" id="new-dataset-submit">Create</button>
      </div>
      <p class="muted small" id="new-dataset-why"></p>
    </form>
    <section class="card" id="build-dataset" hidden>
      <h2 id="build-name"></h2>
      <div class="button-row">
        <a class="button secondary" id="build-health" href="/datasets/health">Check its health</a>
        <a class="button secondary" id="build-train" href="/train">Train on this folder</a>
        <button type="button" class="secondary" id="camera-start">Start the camera</button>
      </div>
      <video id="camera" autoplay muted playsinline hidden></video>
      <form class="inline-form" id="new-class" novalidate>
        <label class="field">New class
          <input type="text" id="new-class-name" maxlength="64" placeholder="e.g. cat" autocomplete="off"></label>
        <button type="submit">Add class</button>
      </form>
      <div class="button-row" id="build-undo-row" hidden>
        <button type="button" class="secondary" id="build-undo">Undo</button>
      </div>
      <p class="muted" id="build-status" aria-live="polite"></p>
      <div class="cards" id="build-classes"></div>
    </section>"""
