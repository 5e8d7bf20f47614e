"""The model tests import torch at the top: without it (on a device) they are skipped at collection."""
from tests.helpers.deps import skip_modules_without

pytest_pycollect_makemodule = skip_modules_without("torch", "torchvision")
