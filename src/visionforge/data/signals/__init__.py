"""1-D signals: OSDB seizure events, windowing, event-level splits and augmentation,
and generic multichannel series (npy/CSV/UEA-UCR .ts)."""

from visionforge.data.signals.augment import (
    balanced_sampler,
    noise_copies,
    oversample_events,
    phase_shift_copies,
    undersample_events,
)
from visionforge.data.signals.dataset import SignalDataset
from visionforge.data.signals.generic import (
    encode_labels,
    load_basic_motions,
    load_series,
    load_series_dataset,
)
from visionforge.data.signals.osdb import (
    CSV_COLUMNS,
    DEFAULT_LABEL_MAP,
    event_label,
    events_from_csv,
    events_to_csv,
    label_events,
    load_osdb_events,
    validate_event,
)
from visionforge.data.signals.split import split_by_event, split_events
from visionforge.data.signals.windowing import (
    Windows,
    event_signal,
    make_windows,
    windows_from_events,
)

__all__ = [
    "CSV_COLUMNS",
    "DEFAULT_LABEL_MAP",
    "SignalDataset",
    "Windows",
    "balanced_sampler",
    "encode_labels",
    "event_label",
    "event_signal",
    "events_from_csv",
    "events_to_csv",
    "label_events",
    "load_basic_motions",
    "load_osdb_events",
    "load_series",
    "load_series_dataset",
    "make_windows",
    "noise_copies",
    "oversample_events",
    "phase_shift_copies",
    "split_by_event",
    "split_events",
    "undersample_events",
    "validate_event",
    "windows_from_events",
]
