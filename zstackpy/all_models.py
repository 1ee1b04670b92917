"""Every table of the product, for alembic and the schema tests.

``core`` cannot import services, so the full metadata is assembled here: import this module
to get ``Base.metadata`` with every table in it. Add a line when a service adds tables.
"""

from zstackpy.api.jobs import models as _jobs  # noqa: F401
from zstackpy.core.db.models import Base
from zstackpy.services.backup_storage import models as _backup_storage  # noqa: F401
from zstackpy.services.cluster import models as _cluster  # noqa: F401
from zstackpy.services.eip import models as _eip  # noqa: F401
from zstackpy.services.host import models as _host  # noqa: F401
from zstackpy.services.identity import models as _identity  # noqa: F401
from zstackpy.services.image import models as _image  # noqa: F401
from zstackpy.services.kvm import models as _kvm  # noqa: F401
from zstackpy.services.loadbalancer import models as _loadbalancer  # noqa: F401
from zstackpy.services.local_storage import models as _local_storage  # noqa: F401
from zstackpy.services.network import models as _network  # noqa: F401
from zstackpy.services.networkservice import models as _networkservice  # noqa: F401
from zstackpy.services.nfs_primary_storage import models as _nfs_primary_storage  # noqa: F401
from zstackpy.services.offering import models as _offering  # noqa: F401
from zstackpy.services.portforwarding import models as _portforwarding  # noqa: F401
from zstackpy.services.primary_storage import models as _primary_storage  # noqa: F401
from zstackpy.services.securitygroup import models as _securitygroup  # noqa: F401
from zstackpy.services.sftp_backup_storage import models as _sftp_backup_storage  # noqa: F401
from zstackpy.services.tag import models as _tag  # noqa: F401
from zstackpy.services.vip import models as _vip  # noqa: F401
from zstackpy.services.virtualrouter import models as _virtualrouter  # noqa: F401
from zstackpy.services.vm import models as _vm  # noqa: F401
from zstackpy.services.volume import models as _volume  # noqa: F401
from zstackpy.services.zone import models as _zone  # noqa: F401

metadata = Base.metadata
