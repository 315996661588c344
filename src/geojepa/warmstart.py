"""Start a run from another run's weights (continued pretraining on new sites).

`InitSource.load(run)` reads a run folder (or checkpoint file) written by `pretrain`
(`InitSource.from_run` wraps a run already loaded);
`check(config)` gives the configuration the new run trains with; `weights` are the state
dict (context encoder, predictor, target encoder) the new run's model starts from.

Guarantees: the new run's model configuration equals the source's (else `InputError`
naming both and what differs: weights of another shape never load half-way); without a
given configuration the source's own is used whole (seed, recipe, window, mask), which a
caller may then change outside the model section; the source is described by its folder,
step and training sites only (``describe()``), never by its data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geojepa.config import RunConfig
from geojepa.errors import InputError

if TYPE_CHECKING:
    import torch

    from geojepa.checkpoint import LoadedRun

INIT_NAME = "init.json"


@dataclass(frozen=True)
class InitSource:
    """Weights and configuration of a finished (or stopped) run, to start another from."""

    path: Path
    config: RunConfig
    weights: Mapping[str, torch.Tensor]
    step: int
    sites: tuple[str, ...]

    @classmethod
    def load(cls, path: str | Path) -> InitSource:
        """Read RUN/checkpoint.pt (or a checkpoint file) of `path`."""
        from geojepa.checkpoint import load_run

        return cls.from_run(load_run(path), path)

    @classmethod
    def from_run(cls, run: LoadedRun, path: str | Path | None = None) -> InitSource:
        """A loaded run as the start (`path`: how to name it; default its folder)."""
        weights = {k: v.detach().clone() for k, v in run.model.state_dict().items()}
        return cls(
            path=Path(run.run_dir if path is None else path),
            config=run.config,
            weights=weights,
            step=int(run.step),
            sites=tuple(s.name for s in run.sites),
        )

    def check(self, config: RunConfig | None) -> RunConfig:
        """The new run's configuration: `config` when its model section is the source's,
        the source's own when `config` is None."""
        if config is None:
            return self.config
        if config.model != self.config.model:
            mine, theirs = asdict(config.model), asdict(self.config.model)
            diff = sorted(k for k in mine if mine[k] != theirs.get(k))
            raise InputError(
                f"the model section differs from the --init run's ({', '.join(diff)}): its "
                "weights cannot start this model",
                file=self.path,
                hint="drop --preset/--config to train with the init run's configuration, or "
                "give the same model section",
            )
        return config

    def describe(self) -> dict[str, Any]:
        """What the run started from: folder, step and training sites (JSON-ready)."""
        return {"run": str(self.path), "step": self.step, "sites": list(self.sites)}


__all__ = ["INIT_NAME", "InitSource"]
