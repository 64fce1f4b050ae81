"""Training shows its progress: a line per epoch, and the folds and ensemble members they belong to."""

import logging
import re

from mmer.config import TrainParams
from mmer.training import cross_validate, format_epoch

from feature_factory import make_corpus, tiny_augment_params, tiny_model_params


def test_format_epoch_line():
    logs = {"loss": 1.5234, "accuracy": 0.4051, "val_loss": 1.6112, "val_accuracy": 0.3812, "learning_rate": 0.001}
    assert (
        format_epoch(3, 30, logs, 7.12)
        == "epoch 3/30: loss 1.523 acc 0.405 | val_loss 1.611 val_acc 0.381 | lr 1e-03 | 7.1 s"
    )
    assert (
        format_epoch(1, 2, {"loss": 2.0}, 0.5, label="fold 2/6 member 1/3")
        == "fold 2/6 member 1/3 epoch 1/2: loss 2.000 | 0.5 s"
    )


def test_cross_validation_logs_folds_members_and_epochs(caplog):
    corpus = make_corpus(seed=3)
    train_params = TrainParams(epochs=2, batch_size=16, patience=5, ensemble=2)
    with caplog.at_level(logging.INFO, logger="mmer"):
        summary, _ = cross_validate(
            corpus.index,
            corpus.caches,
            label_names=corpus.label_names,
            model_params=tiny_model_params(),
            train_params=train_params,
            augment_params=tiny_augment_params(),
            folds=(1,),
        )
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("mmer")]
    text = "\n".join(lines)
    assert re.search(r"^fold 1/1 \(fold 1\): test actors \[3, 4\], validation actors \[5, 6\]$", text, re.M)
    for member in (1, 2):
        assert re.search(rf"^fold 1/1 member {member}/2: seed \d+, \d+ training clips", text, re.M)
        epochs = [line for line in lines if line.startswith(f"fold 1/1 member {member}/2 epoch ")]
        assert [line.split(":")[0][-3:] for line in epochs] == ["1/2", "2/2"]
        assert all(
            re.search(r"loss [\d.]+ acc [\d.]+ \| val_loss [\d.]+ val_acc [\d.]+ \| lr [\de.+-]+ \| [\d.]+ s", line)
            for line in epochs
        )
        assert epochs[0].endswith(" *")  # the first epoch is always the best so far
    assert re.search(r"^fold 1/1: test actors \[3, 4\] -> accuracy [\d.]+, UAR [\d.]+$", text, re.M)
    assert f"accuracy {summary['accuracy']['mean']:.3f} ± 0.000" in text
