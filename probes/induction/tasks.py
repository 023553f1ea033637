"""Training data for the emergence runs: repeated random tokens (Olsson) and Reddy's bursty classification.

Reddy 2023 (METHODS.md section 1): K classes with means mu_k ~ N(0, I/D), each bound to one of L labels; an item
of class k is x = (mu_k + eps * eta) / sqrt(1 + eps^2), eta ~ N(0, I/D). A sequence is N (item, label) pairs and a
query item; the target is the query's label. A fraction p_B of sequences is bursty: N/B classes, B copies each,
the query drawn from them. The rest draw context and query classes i.i.d. from a Zipf(alpha) rank-frequency law.
A fraction p_C uses novel classes (fresh means, random labels). Our choices where the abstract is silent: novel
sequences are always bursty (a novel query absent from the context is unanswerable), label vectors are fixed
random N(0, I/D) vectors, and position is a one-hot code of length 2N+1 appended to each token (d = D + 2N + 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from probes.induction.scores import repeated_random_tokens

BOS_TOKEN = 0  # the repeat task's vocabulary reserves id 0 for BOS


def repeat_batch(vocab_size: int, batch: int, seq_len: int, seed: int) -> torch.Tensor:
    """(batch, 1 + 2T): BOS, T random tokens from 1..vocab_size-1, the same T again."""
    return repeated_random_tokens(vocab_size, [BOS_TOKEN], batch, seq_len, BOS_TOKEN, seed)


@dataclass(frozen=True)
class BurstySpec:
    """The data parameters of Reddy's task (the sliders on the page)."""

    n_classes: int = 128  # K
    n_labels: int = 32  # L
    burstiness: int = 4  # B: copies of each class in a bursty context (0: no bursty sequences); divides N
    p_bursty: float = 1.0  # p_B
    p_novel: float = 0.0  # p_C
    zipf_alpha: float = 0.0  # rank-frequency exponent over classes
    n_pairs: int = 8  # N (item, label) pairs before the query
    dim: int = 63  # D
    noise: float = 0.1  # eps: within-class spread

    @property
    def d_model(self) -> int:
        return self.dim + 2 * self.n_pairs + 1

    def validate(self) -> None:
        if self.burstiness < 0 or (self.burstiness and self.n_pairs % self.burstiness):
            raise ValueError(f"Burstiness B={self.burstiness} must divide N={self.n_pairs} (or be 0).")
        if self.burstiness and self.n_pairs // self.burstiness > self.n_classes:
            raise ValueError("A bursty context needs N/B distinct classes; raise K or B.")
        if not (0 <= self.p_bursty <= 1 and 0 <= self.p_novel <= 1):
            raise ValueError("p_B and p_C are fractions between 0 and 1.")


@dataclass
class BurstyWorld:
    """The fixed part of the task: class means, their labels, label vectors, the Zipf law."""

    spec: BurstySpec
    means: torch.Tensor  # (K, D)
    class_labels: torch.Tensor  # (K,)
    label_vectors: torch.Tensor  # (L, D)
    class_probs: torch.Tensor  # (K,)

    @classmethod
    def build(cls, spec: BurstySpec, seed: int) -> BurstyWorld:
        spec.validate()
        generator = torch.Generator().manual_seed(seed)
        scale = spec.dim**-0.5
        ranks = torch.arange(1, spec.n_classes + 1, dtype=torch.float)
        probs = ranks ** (-spec.zipf_alpha)
        return cls(
            spec=spec,
            means=torch.randn(spec.n_classes, spec.dim, generator=generator) * scale,
            class_labels=torch.randint(0, spec.n_labels, (spec.n_classes,), generator=generator),
            label_vectors=torch.randn(spec.n_labels, spec.dim, generator=generator) * scale,
            class_probs=probs / probs.sum(),
        )


@dataclass
class BurstyBatch:
    inputs: torch.Tensor  # (batch, 2N + 1, d_model)
    targets: torch.Tensor  # (batch,) label of the query
    item_classes: torch.Tensor  # (batch, N) class index per context item (novel classes: K + slot)
    query_class: torch.Tensor  # (batch,)


def _shuffle_rows(values: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    order = torch.rand(values.shape, generator=generator).argsort(dim=1)
    return values.gather(1, order)


def _bursty_classes(probs: torch.Tensor, batch: int, spec: BurstySpec, burst: int, generator: torch.Generator):
    """(batch, N) classes, B copies of N/B distinct classes, shuffled; (batch,) query class among them."""
    distinct = spec.n_pairs // burst
    chosen = torch.multinomial(probs.expand(batch, -1), distinct, replacement=False, generator=generator)
    classes = _shuffle_rows(chosen.repeat_interleave(burst, dim=1), generator)
    query = chosen[torch.arange(batch), torch.randint(0, distinct, (batch,), generator=generator)]
    return classes, query


def _iid_classes(probs: torch.Tensor, batch: int, spec: BurstySpec, generator: torch.Generator):
    classes = torch.multinomial(probs, batch * spec.n_pairs, replacement=True, generator=generator)
    query = torch.multinomial(probs, batch, replacement=True, generator=generator)
    return classes.view(batch, spec.n_pairs), query


def _items(means: torch.Tensor, noise: float, generator: torch.Generator) -> torch.Tensor:
    """Noisy items around class means; means (..., D) -> items (..., D)."""
    eta = torch.randn(means.shape, generator=generator) * means.shape[-1] ** -0.5
    return (means + noise * eta) / (1 + noise**2) ** 0.5


def assemble(world: BurstyWorld, classes, query, means, labels, generator: torch.Generator) -> BurstyBatch:
    """Stack items, label vectors and one-hot positions; means (batch, M, D) and labels (batch, M) per class slot."""
    spec = world.spec
    batch = classes.shape[0]
    rows = torch.arange(batch)[:, None]
    item_vectors = _items(means[rows, classes], spec.noise, generator)  # (batch, N, D)
    label_vectors = world.label_vectors[labels[rows, classes]]  # (batch, N, D)
    query_vector = _items(means[torch.arange(batch), query], spec.noise, generator)  # (batch, D)
    content = torch.stack([item_vectors, label_vectors], dim=2).flatten(1, 2)  # (batch, 2N, D)
    content = torch.cat([content, query_vector[:, None]], dim=1)  # (batch, 2N + 1, D)
    positions = torch.eye(2 * spec.n_pairs + 1).expand(batch, -1, -1)
    return BurstyBatch(torch.cat([content, positions], dim=-1), labels[torch.arange(batch), query], classes, query)


def training_batch(world: BurstyWorld, batch: int, generator: torch.Generator) -> BurstyBatch:
    """A mixed batch: bursty (p_B), i.i.d. Zipf, and novel-class (p_C, always bursty) sequences."""
    spec = world.spec
    classes, query = _iid_classes(world.class_probs, batch, spec, generator)
    if spec.burstiness:
        bursty_classes, bursty_query = _bursty_classes(world.class_probs, batch, spec, spec.burstiness, generator)
        is_bursty = torch.rand(batch, generator=generator) < spec.p_bursty
        classes = torch.where(is_bursty[:, None], bursty_classes, classes)
        query = torch.where(is_bursty, bursty_query, query)
    means = world.means.expand(batch, -1, -1)
    labels = world.class_labels.expand(batch, -1)
    if spec.p_novel > 0:
        novel = novel_batch(world, batch, max(spec.burstiness, 1), generator, flipped=False)
        is_novel = torch.rand(batch, generator=generator) < spec.p_novel
        trained = assemble(world, classes, query, means, labels, generator)
        return BurstyBatch(
            torch.where(is_novel[:, None, None], novel.inputs, trained.inputs),
            torch.where(is_novel, novel.targets, trained.targets),
            torch.where(is_novel[:, None], novel.item_classes, trained.item_classes),
            torch.where(is_novel, novel.query_class, trained.query_class),
        )
    return assemble(world, classes, query, means, labels, generator)


def novel_batch(world: BurstyWorld, batch: int, burst: int, generator: torch.Generator, flipped: bool) -> BurstyBatch:
    """Bursty sequences whose label mapping must be read from the context.

    flipped=False: novel classes (fresh means, random labels) - Reddy's ICL test.
    flipped=True: trained classes with labels re-drawn to differ from the trained ones - in-context must win.
    """
    spec = world.spec
    distinct = spec.n_pairs // burst
    if flipped:
        uniform = torch.full((spec.n_classes,), 1.0 / spec.n_classes)
        classes, query = _bursty_classes(uniform, batch, spec, burst, generator)
        shift = torch.randint(1, spec.n_labels, (batch, spec.n_classes), generator=generator)
        labels = (world.class_labels.expand(batch, -1) + shift) % spec.n_labels
        return assemble(world, classes, query, world.means.expand(batch, -1, -1), labels, generator)
    slots = torch.arange(distinct).expand(batch, -1)
    classes = _shuffle_rows(slots.repeat_interleave(burst, dim=1), generator)
    query = torch.randint(0, distinct, (batch,), generator=generator)
    means = torch.randn(batch, distinct, spec.dim, generator=generator) * spec.dim**-0.5
    labels = torch.rand(batch, spec.n_labels, generator=generator).argsort(dim=1)[:, :distinct]  # distinct labels
    made = assemble(world, classes, query, means, labels, generator)
    made.item_classes = made.item_classes + spec.n_classes
    made.query_class = made.query_class + spec.n_classes
    return made


def iwl_batch(world: BurstyWorld, batch: int, generator: torch.Generator) -> BurstyBatch:
    """Trained classes, the query's class absent from the context: only in-weights learning can answer."""
    spec = world.spec
    query = torch.multinomial(world.class_probs, batch, replacement=True, generator=generator)
    others = world.class_probs.expand(batch, -1).clone()
    others[torch.arange(batch), query] = 0.0
    classes = torch.multinomial(others, spec.n_pairs, replacement=True, generator=generator)
    return assemble(world, classes, query, world.means.expand(batch, -1, -1),
                    world.class_labels.expand(batch, -1), generator)  # fmt: skip
