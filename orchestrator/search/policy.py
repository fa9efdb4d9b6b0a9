"""The controller network: an LSTM that emits the grammar's tokens one at a time.

At position ``p`` the LSTM reads the embedding of token ``p-1`` (a learned start vector at
``p = 0``), and a head of its own for position ``p`` gives logits over that position's global
vocabulary. Invalid choices (``SearchSpace.mask``) get logit ``-inf`` before the softmax, so they
have probability exactly 0 and are never drawn. Sampling is batched (one LSTM step for the whole
batch per position, masks per row) and always samples, never argmax.

Random draws use a NumPy generator passed in by the caller, whose state is plain data, so a
strategy's checkpoint restores the exact next proposals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np
import torch
from torch import Tensor, nn

from orchestrator.space import SearchSpace


@dataclass(frozen=True)
class Rollout:
    """A batch of sampled sequences: tokens (B, L), per-token log-probs (B, L), entropy (B,)."""

    tokens: np.ndarray
    token_log_probs: np.ndarray
    entropy: np.ndarray


class Controller(nn.Module):
    """1-layer LSTM controller; every weight drawn from U(-init_range, init_range)."""

    def __init__(
        self,
        space: SearchSpace,
        hidden: int,
        init_range: float,
        seed: int,
        tanh_constant: float = 0.0,
        temperature: float = 1.0,
    ) -> None:
        super().__init__()
        self.space = space
        self.tanh_constant = tanh_constant
        self.temperature = temperature
        self.vocab = [space.vocab_size(space.kind(p)) for p in range(space.length)]
        self.start = nn.Parameter(torch.empty(1, hidden))
        self.embed = nn.ModuleList(nn.Embedding(v, hidden) for v in self.vocab)
        self.cell = nn.LSTMCell(hidden, hidden)
        self.heads = nn.ModuleList(nn.Linear(hidden, v) for v in self.vocab)
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in self.parameters():
                p.uniform_(-init_range, init_range, generator=g)
        # Unary and binary masks do not depend on the prefix: compute them once. Input masks
        # depend on it, through few distinct prefixes: computed once per prefix.
        self._fixed = {
            p: torch.from_numpy(space.mask([0] * p))
            for p in range(space.length)
            if space.kind(p) != "input"
        }
        self._by_prefix: dict[tuple[int, ...], Tensor] = {}
        # Every position's vocabulary side by side (the joint vocabulary), for scoring all
        # positions in one pass: position p's tokens are columns offsets[p]:offsets[p + 1].
        self._offsets = np.concatenate([[0], np.cumsum(self.vocab)]).tolist()

    # -- masks --------------------------------------------------------------------------------

    def masks_at(self, position: int, prefixes: np.ndarray) -> Tensor:
        """(B, V) bool: the valid next tokens of each row's prefix."""
        fixed = self._fixed.get(position)
        if fixed is not None:
            return fixed.expand(len(prefixes), -1)
        if self.vocab[position] == 1:  # one choice: always valid (the grammar admits x)
            return torch.ones(len(prefixes), 1, dtype=torch.bool)
        rows = []
        for row in prefixes[:, :position].tolist():
            key = tuple(row)
            mask = self._by_prefix.get(key)
            if mask is None:
                mask = self._by_prefix[key] = torch.from_numpy(self.space.mask(key))
            rows.append(mask)
        return torch.stack(rows)

    def masks_for(self, tokens: np.ndarray) -> Tensor:
        """(B, L, ΣV) bool: for teacher-forced ``tokens`` (B, L), row ``b`` position ``p`` admits
        the valid tokens of position ``p``'s own block of the joint vocabulary, and nothing
        outside it. Computed once per batch and reused by every epoch of an update."""
        n = len(tokens)
        out = torch.zeros(n, self.space.length, self._offsets[-1], dtype=torch.bool)
        for p in range(self.space.length):
            out[:, p, self._offsets[p] : self._offsets[p + 1]] = self.masks_at(p, tokens)
        return out

    def logits(self, position: int, h: Tensor, heat: float = 1.0) -> Tensor:
        """Head output divided by the temperature and, if ``tanh_constant`` > 0, squashed into
        ``(−c, c)`` (ENAS, Pham et al. 2018): no token's probability can fall to about 0, so the
        policy keeps sampling near its mode instead of collapsing onto one sequence. ``heat`` ≥ 1
        divides the result once more: as it grows, every position's draw tends to uniform over
        its valid tokens (the strategy's exploration, ``PolicyGradient``)."""
        z = self.heads[position](h) / self.temperature
        z = self.tanh_constant * torch.tanh(z) if self.tanh_constant > 0 else z
        return z / heat if heat != 1.0 else z

    # -- sampling -----------------------------------------------------------------------------

    @torch.no_grad()
    def sample(self, n: int, rng: np.random.Generator, heat: float = 1.0) -> Rollout:
        """``n`` valid sequences drawn from the policy with its logits divided by ``heat``, with
        their log-probs under that distribution, the one they were drawn from (float32 softmax)."""
        length = self.space.length
        tokens = np.zeros((n, length), dtype=np.int64)
        logps = np.zeros((n, length), dtype=np.float64)
        entropy = np.zeros(n, dtype=np.float64)
        state = None
        inp = self.start.expand(n, -1)
        for p in range(length):
            h, c = self.cell(inp, state)
            state = (h, c)
            logp = _masked_log_softmax(self.logits(p, h, heat), self.masks_at(p, tokens))
            probs = logp.exp().double().numpy()
            cdf = np.cumsum(probs, axis=1)
            # u·total < total, so the first index whose cdf exceeds it has probability > 0:
            # a masked token (probability exactly 0) can never be drawn.
            u = rng.random(n) * cdf[:, -1]
            choice = (cdf <= u[:, None]).sum(axis=1)
            tokens[:, p] = choice
            logps[:, p] = logp.gather(1, torch.from_numpy(choice)[:, None]).squeeze(1).double().numpy()
            entropy += _entropy(logp).double().numpy()
            inp = self.embed[p](torch.from_numpy(choice))
        return Rollout(tokens, logps, entropy)

    # -- scoring given tokens (with gradients) ------------------------------------------------

    def score(self, tokens: np.ndarray,
              masks: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Teacher-forced per-token log-probs (B, L) and per-token entropies (B, L) of ``tokens``
        (``masks``: from ``masks_for(tokens)``, to reuse them across epochs).

        The same function as ``sample`` computes step by step, in few large operations: the
        inputs are known, so the LSTM runs over the whole sequence at once, and every position's
        head is applied together (the heads side by side; each position masked to its own
        block), one softmax for all positions."""
        n, length = tokens.shape
        t = torch.from_numpy(np.asarray(tokens, dtype=np.int64))
        if masks is None:
            masks = self.masks_for(tokens)
        inputs = [self.start.expand(n, -1)] + [self.embed[p](t[:, p]) for p in range(length - 1)]
        zero = torch.zeros(1, n, self.cell.hidden_size)
        cell = self.cell
        h, _, _ = torch.lstm(torch.stack(inputs), (zero, zero),
                             [cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh],
                             True, 1, 0.0, self.training, False, False)  # (L, B, hidden)
        heads = [cast(nn.Linear, head) for head in self.heads]
        weight = torch.cat([head.weight for head in heads])
        bias = torch.cat([head.bias for head in heads])
        z = torch.nn.functional.linear(h.transpose(0, 1), weight, bias) / self.temperature
        if self.tanh_constant > 0:
            z = self.tanh_constant * torch.tanh(z)
        logp = _masked_log_softmax(z, masks)  # (B, L, ΣV)
        index = t + torch.tensor(self._offsets[:-1], dtype=torch.int64)
        return logp.gather(2, index[:, :, None]).squeeze(2), _entropy(logp)


def _masked_log_softmax(logits: Tensor, mask: Tensor) -> Tensor:
    return torch.log_softmax(logits.masked_fill(~mask, float("-inf")), dim=-1)


def _entropy(logp: Tensor) -> Tensor:
    """-Σ p·log p over the valid choices (masked entries have p = 0 and log p = -inf)."""
    finite = torch.isfinite(logp)
    return -(logp.exp() * torch.where(finite, logp, torch.zeros_like(logp))).sum(-1)
