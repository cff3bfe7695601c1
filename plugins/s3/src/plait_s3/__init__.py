"""plait-s3: S3 and S3-compatible object storage (AWS, MinIO, Ceph...) for Plait flows.

Task types ``plait.s3.Upload``, ``Download``, ``List``, ``Delete``, ``DeleteList``, ``Copy``,
``CreateBucket`` and the trigger ``plait.s3.Trigger``, also registered under Kestra's
``io.kestra.plugin.aws.s3.*`` names.
"""

from plait_s3._models import Action, Filter, S3Object
from plait_s3.tasks import Copy, CreateBucket, Delete, DeleteList, Download, List, Upload
from plait_s3.trigger import Trigger

__all__ = [
    "Action",
    "Copy",
    "CreateBucket",
    "Delete",
    "DeleteList",
    "Download",
    "Filter",
    "List",
    "S3Object",
    "Trigger",
    "Upload",
]
