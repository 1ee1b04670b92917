"""Every table of the product, for alembic and the schema tests.

``core`` cannot import services, so the full metadata is assembled here: import this module
to get ``Base.metadata`` with every table in it. Add a line when a service adds tables.
"""

from zstackpy.api.jobs import models as _jobs  # noqa: F401
from zstackpy.core.db.models import Base
from zstackpy.services.cluster import models as _cluster  # noqa: F401
from zstackpy.services.identity import models as _identity  # noqa: F401
from zstackpy.services.tag import models as _tag  # noqa: F401
from zstackpy.services.zone import models as _zone  # noqa: F401

metadata = Base.metadata
