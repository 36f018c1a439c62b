"""What a serving process imports: a model compiled with the kernels tuned for its share
(`load`, from the database) or a library written by `tunesvc compile` (`load_library`, no
database). `tunesvc.runtime.tuned` chooses the kernels and compiles; `library` and `deploy`
read and write the deployable pair; `vm` calls a library; `timing` measures calls."""

from tunesvc.runtime.library import DeployedModel, load_library
from tunesvc.runtime.tuned import TunedModel, load

__all__ = ["DeployedModel", "TunedModel", "load", "load_library"]
