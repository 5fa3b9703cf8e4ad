"""TabM-mini ensemble of the tabular classifier: shapes, members differ at init, a plain
classifier when k = 1 or the adapters are ones, the mean of the members' losses, a fit."""

import numpy as np
import pytest

import tfrs_emb  # noqa: F401
import tensorflow as tf

from tfrs_emb.models import tabular_training as training
from tfrs_emb.models.tabular import TabularClassifier, TabularEncoder
from tfrs_emb.models.tabular_ensemble import (MemberAdapter, MemberDense,
                                              TabularEnsembleClassifier)


def _batch(n=6, seed=0):
  rng = np.random.default_rng(seed)
  return {"continuous": rng.normal(size=(n, 3)).astype(np.float32),
          "categorical": rng.integers(0, 5, (n, 2)).astype(np.int32)}


def _encoder(dropout=0.1):
  return TabularEncoder(dim=8, num_continuous=3, cardinalities=(5, 5), num_heads=2,
                        num_layers=1, dropout=dropout, numeric_embedding="periodic",
                        num_frequencies=2)


def test_layer_shapes_and_config():
  tokens = tf.random.normal([5, 4, 8])
  adapter = MemberAdapter(3)
  out = adapter(tokens)
  assert out.shape == (15, 4, 8) and adapter.r.shape == (3, 4, 8)
  assert set(np.unique(adapter.r.numpy())) == {-1.0, 1.0}
  # row b·k + i is member i's copy of row b
  np.testing.assert_allclose(out.numpy()[1 * 3 + 2], tokens.numpy()[1] * adapter.r.numpy()[2])
  np.testing.assert_allclose(MemberAdapter(1)(tokens).numpy(), tokens.numpy())  # ones
  heads = MemberDense(3, 7)
  assert heads(tf.random.normal([5, 3, 8])).shape == (5, 3, 7)
  assert MemberAdapter(**adapter.get_config()).get_config() == adapter.get_config()
  assert MemberDense(**heads.get_config()).get_config() == heads.get_config()
  with pytest.raises(ValueError, match="at least 1 member"):
    MemberAdapter(0)


def test_classifier_shapes_and_members_differ_at_init():
  tf.keras.utils.set_random_seed(0)
  clf = TabularEnsembleClassifier(_encoder(), num_classes=4, ensemble_k=3)
  b = _batch()
  members = clf.member_logits(b).numpy()
  assert members.shape == (6, 3, 4) and clf(b).shape == (6, 4)
  emb, logits = clf.embed_and_logits(b)
  assert emb.shape == (6, 8) and clf.embed(b).shape == (6, 8)
  for i in range(3):
    for j in range(i):
      assert np.abs(members[:, i] - members[:, j]).max() > 1e-3
  probs = tf.nn.softmax(members, axis=-1).numpy().mean(axis=1)
  np.testing.assert_allclose(tf.nn.softmax(logits).numpy(), probs, atol=1e-5)
  assert clf.get_config()["ensemble_k"] == 3


@pytest.mark.parametrize("k", [1, 3])
def test_equals_plain_classifiers_when_adapters_are_ones(k):
  tf.keras.utils.set_random_seed(1)
  enc = _encoder()
  b = _batch()
  clf = TabularEnsembleClassifier(enc, num_classes=4, ensemble_k=k)
  clf(b)
  clf.adapter.r.assign(tf.ones_like(clf.adapter.r))   # k = 1: already ones
  plain = TabularClassifier(enc, num_classes=4)       # the same encoder weights
  plain(b)
  member_probs = []
  for i in range(k):
    plain.head.set_weights([clf.head.kernel.numpy()[i], clf.head.bias.numpy()[i]])
    emb, logits = plain.embed_and_logits(b)
    np.testing.assert_allclose(clf.member_logits(b).numpy()[:, i], logits.numpy(), atol=1e-5)
    np.testing.assert_allclose(clf.embed(b).numpy(), emb.numpy(), atol=1e-5)
    member_probs.append(tf.nn.softmax(logits).numpy())
  np.testing.assert_allclose(tf.nn.softmax(clf(b)).numpy(), np.mean(member_probs, axis=0),
                             atol=1e-5)


def test_training_loss_is_the_mean_of_the_members_losses():
  tf.keras.utils.set_random_seed(2)
  clf = TabularEnsembleClassifier(_encoder(dropout=0.0), num_classes=4, dropout=0.0,
                                  ensemble_k=3)
  clf.compile(optimizer=tf.keras.optimizers.Adam(1e-3),
              loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  b = _batch()
  y = np.array([0, 1, 2, 3, 0, 1], np.int32)
  loss, logits = clf.loss_and_logits(b, tf.constant(y))
  members = clf.member_logits(b).numpy()
  ce = [tf.keras.losses.sparse_categorical_crossentropy(y, members[:, i], from_logits=True)
        for i in range(3)]
  assert float(loss) == pytest.approx(float(np.mean(ce)), rel=1e-5)
  np.testing.assert_allclose(logits.numpy(), clf(b).numpy(), atol=1e-5)


def test_fit_classifier_trains_an_ensemble():
  tf.keras.utils.set_random_seed(3)
  b = _batch(256, seed=3)
  y = (b["continuous"][:, 0] > 0).astype(np.int32)
  enc = training.build_encoder(3, (5, 5), dim=8, num_heads=2, num_layers=1,
                               numeric_embedding="periodic", num_frequencies=2)
  clf = training.fit_classifier(enc, 2, b, y, b, y, lr=3e-3, encoder_lr_multiplier=1.0,
                                epochs=15, batch_size=64, patience=15, seed=0, ensemble_k=2)
  assert isinstance(clf, TabularEnsembleClassifier)
  probs = training.predict_proba(clf, b)
  assert probs.shape == (256, 2) and np.mean(probs.argmax(axis=1) == y) > 0.8
  assert training.embed(clf, b).shape == (256, 8)
