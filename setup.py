"""Package layout: the domain in libs/headrace, the services in services/ (headrace.services)."""

from setuptools import find_packages, setup

service_packages = ["headrace.services"] + [
    f"headrace.services.{name}" for name in find_packages("services")
]

setup(
    package_dir={"headrace": "libs/headrace", "headrace.services": "services"},
    packages=[f"headrace.{name}" for name in find_packages("libs/headrace")]
    + ["headrace"]
    + service_packages,
    # The dashboard's templates and static files ship inside the package: no front-end build.
    package_data={
        "headrace.dashboard": ["templates/*.html", "static/*"],
        "headrace.api": ["openapi.json"],
    },
)
