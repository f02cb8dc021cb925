"""Django's own view of a static tree, for tests/pipeline.rs.

    python3 django_static.py collect SRC STATIC_ROOT
        Runs `collectstatic` with ManifestStaticFilesStorage over SRC and
        prints, as JSON, every reference Django rewrote: the file, the URL as
        written, the logical path it resolves to, the URL Django wrote in its
        place, and whether the reference sits inside a CSS comment.

    python3 django_static.py load PUBLISHED
        Loads PUBLISHED/staticfiles.json with ManifestStaticFilesStorage and
        prints, as JSON, the name Django resolves for every path in it, the
        hash Django computes for those paths, and the bytes Django itself
        would write for the same manifest.

Exits 3 with the install command when Django is missing.
"""

import json
import os
import posixpath
import sys
import tempfile
from urllib.parse import unquote, urldefrag

try:
    import django
    from django.conf import settings
except ImportError:
    sys.stderr.write("Django is not installed: pip install django\n")
    sys.exit(3)


def configure(static_root, dirs):
    settings.configure(
        DEBUG=False,
        INSTALLED_APPS=["django.contrib.staticfiles"],
        STATIC_URL="/static/",
        STATIC_ROOT=static_root,
        STATICFILES_DIRS=dirs,
        STORAGES={
            "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
            "staticfiles": {"BACKEND": "__main__.RecordingStorage"},
        },
    )
    django.setup()


def comment_ranges(text):
    """(start, end) of each /* */ comment, strings skipped as CSS does."""
    out = []
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == "/" and text.startswith("*", i + 1):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append((i, end))
            i = end
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            i = j + 1
        elif c == "\\":
            i += 2
        else:
            i += 1
    return out


RECORDED = {}


def recording_storage():
    from django.contrib.staticfiles.storage import ManifestStaticFilesStorage

    class RecordingStorage(ManifestStaticFilesStorage):
        def url_converter(self, name, hashed_files, template=None):
            template = template or self.default_template
            convert = super().url_converter(name, hashed_files, template)
            before, after = template.split("%(url)s")

            def converter(match):
                out = convert(match)
                if out == match.group("matched"):
                    return out
                url = match.group("url")
                url_path, _ = urldefrag(url)
                if url_path.startswith("/"):
                    target = url_path[len(settings.STATIC_URL) :]
                else:
                    target = posixpath.join(posixpath.dirname(name), url_path)
                start = match.start("url")
                # Every post-processing pass reads the original file again,
                # so the same reference is seen once per pass.
                RECORDED[(name, template, start)] = {
                    "file": name,
                    "url": url,
                    "target": posixpath.normpath(unquote(target.split("?")[0].strip())),
                    "django_url": out[len(before) : len(out) - len(after)],
                    # Django rewrites url() in CSS comments too; the one comment
                    # that is a reference is the source map's.
                    "in_comment": name.endswith(".css")
                    and "sourceMappingURL" not in template
                    and any(a <= start < b for a, b in comment_ranges(match.string)),
                }
                return out

            return converter

    return RecordingStorage


def collect(src, static_root):
    configure(static_root, [src])
    sys.modules["__main__"].RecordingStorage = recording_storage()
    from django.core.management import call_command

    call_command("collectstatic", interactive=False, verbosity=0)
    records = sorted(RECORDED.items(), key=lambda kv: (kv[0][0], kv[0][2]))
    json.dump([r for _, r in records], sys.stdout, indent=1)


def load(published):
    configure(published, [])
    from django.contrib.staticfiles.storage import ManifestStaticFilesStorage

    storage = ManifestStaticFilesStorage(location=published)
    paths = storage.hashed_files
    resolved = {name: storage.stored_name(name) for name in paths}
    with tempfile.TemporaryDirectory() as tmp:
        again = ManifestStaticFilesStorage(location=tmp)
        again.hashed_files = dict(sorted(paths.items()))
        again.save_manifest()
        with open(os.path.join(tmp, again.manifest_name), "rb") as f:
            resaved = f.read().decode()
    json.dump(
        {
            "django": django.get_version(),
            "resolved": resolved,
            "hash": again.manifest_hash,
            "loaded_hash": storage.manifest_hash,
            "resaved": resaved,
        },
        sys.stdout,
    )


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "collect":
        collect(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 3 and sys.argv[1] == "load":
        load(sys.argv[2])
    else:
        sys.stderr.write(__doc__)
        sys.exit(2)
