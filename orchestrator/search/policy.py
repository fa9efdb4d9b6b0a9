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
        # Unary and binary masks do not depend on the prefix: compute them once.
        self._fixed = {
            p: torch.from_numpy(space.mask([0] * p))
            for p in range(space.length)
            if space.kind(p) != "input"
        }

    # -- masks --------------------------------------------------------------------------------

    def masks_at(self, position: int, prefixes: np.ndarray) -> Tensor:
        """(B, V) bool: the valid next tokens of each row's prefix."""
        fixed = self._fixed.get(position)
        if fixed is not None:
            return fixed.expand(len(prefixes), -1)
        return torch.from_numpy(np.stack([self.space.mask(row) for row in prefixes[:, :position]]))

    def logits(self, position: int, h: Tensor) -> Tensor:
        """Head output divided by the temperature and, if ``tanh_constant`` > 0, squashed into
        ``(−c, c)`` (ENAS, Pham et al. 2018): no token's probability can fall to about 0, so the
        policy keeps sampling near its mode instead of collapsing onto one sequence."""
        z = self.heads[position](h) / self.temperature
        return self.tanh_constant * torch.tanh(z) if self.tanh_constant > 0 else z

    # -- sampling -----------------------------------------------------------------------------

    @torch.no_grad()
    def sample(self, n: int, rng: np.random.Generator) -> Rollout:
        """``n`` valid sequences drawn from the policy, with their log-probs (float32 softmax)."""
        length = self.space.length
        tokens = np.zeros((n, length), dtype=np.int64)
        logps = np.zeros((n, length), dtype=np.float64)
        entropy = np.zeros(n, dtype=np.float64)
        state = None
        inp = self.start.expand(n, -1)
        for p in range(length):
            h, c = self.cell(inp, state)
            state = (h, c)
            logp = _masked_log_softmax(self.logits(p, h), self.masks_at(p, tokens))
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

    def score(self, tokens: np.ndarray) -> tuple[Tensor, Tensor]:
        """Teacher-forced per-token log-probs (B, L) and per-token entropies (B, L) of ``tokens``."""
        n, length = tokens.shape
        t = torch.from_numpy(np.asarray(tokens, dtype=np.int64))
        state = None
        inp = self.start.expand(n, -1)
        logps, ents = [], []
        for p in range(length):
            h, c = self.cell(inp, state)
            state = (h, c)
            logp = _masked_log_softmax(self.logits(p, h), self.masks_at(p, tokens))
            logps.append(logp.gather(1, t[:, p : p + 1]).squeeze(1))
            ents.append(_entropy(logp))
            inp = self.embed[p](t[:, p])
        return torch.stack(logps, 1), torch.stack(ents, 1)


def _masked_log_softmax(logits: Tensor, mask: Tensor) -> Tensor:
    return torch.log_softmax(logits.masked_fill(~mask, float("-inf")), dim=-1)


def _entropy(logp: Tensor) -> Tensor:
    """-Σ p·log p over the valid choices (masked entries have p = 0 and log p = -inf)."""
    finite = torch.isfinite(logp)
    return -(logp.exp() * torch.where(finite, logp, torch.zeros_like(logp))).sum(-1)
