"""The five workloads as eager code written once against the PyTorch API.

ember_w.py and torch_w.py run this same code with their own library: the benchmark measures
the frameworks on identical model code, which is the parity ember promises (a PyTorch user's
code with the import changed).
"""

from bench.workloads import common


def workloads(lib):
    """``make_step(name, state, batch)`` for ``lib`` (the ``ember`` or ``torch`` module)."""
    nn, optim, F = lib.nn, lib.optim, lib.nn.functional

    class BasicBlock(nn.Module):
        """conv-BN-ReLU-conv-BN plus the identity, then ReLU (32 channels, stride 1)."""

        def __init__(self, width):
            super().__init__()
            self.conv1 = nn.Conv2d(width, width, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(width, eps=common.BN_EPS, momentum=common.BN_MOMENTUM)
            self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(width, eps=common.BN_EPS, momentum=common.BN_MOMENTUM)

        def forward(self, x):
            out = F.relu(self.bn1(self.conv1(x)))
            return F.relu(self.bn2(self.conv2(out)) + x)

    class ResNetLike(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 32, 3, padding=1, bias=False)
            self.stem_bn = nn.BatchNorm2d(32, eps=common.BN_EPS, momentum=common.BN_MOMENTUM)
            self.block1 = BasicBlock(32)
            self.block2 = BasicBlock(32)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(32, 10)

        def forward(self, x):
            x = F.relu(self.stem_bn(self.stem(x)))
            x = self.block2(self.block1(x))
            return self.fc(self.pool(x).flatten(1))

    class LSTMClassifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(common.VOCAB, common.W4_EMBED)
            self.lstm = nn.LSTM(common.W4_EMBED, common.W4_HIDDEN, batch_first=True)
            self.fc = nn.Linear(common.W4_HIDDEN, 2)

        def forward(self, tokens):
            _, (h, _) = self.lstm(self.embedding(tokens))
            return self.fc(h[-1])

    class TransformerClassifier(nn.Module):
        def __init__(self):
            super().__init__()
            d = common.W5_MODEL
            self.embedding = nn.Embedding(common.VOCAB, d)
            layer = nn.TransformerEncoderLayer(d, common.W5_HEADS, common.W5_FF, dropout=0.0,
                                               layer_norm_eps=common.LN_EPS, batch_first=True)
            self.encoder = nn.TransformerEncoder(layer, common.W5_LAYERS,
                                                 enable_nested_tensor=False)
            self.fc = nn.Linear(d, 10)

        def forward(self, tokens):
            return self.fc(self.encoder(self.embedding(tokens)).mean(dim=1))

    def _model(name):
        if name == "W1":
            return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                                 nn.Linear(512, 10))
        if name == "W2":
            return nn.Sequential(
                nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                nn.Linear(1568, 128), nn.ReLU(), nn.Linear(128, 10),
            )
        return {"W3": ResNetLike, "W4": LSTMClassifier, "W5": TransformerClassifier}[name]()

    def _optimizer(name, params):
        kind, kwargs = common.optimizer(name)
        return {"sgd": optim.SGD, "adam": optim.Adam, "adamw": optim.AdamW}[kind](params, **kwargs)

    def load(model, state):
        """Load the shared NumPy state; every parameter must be there (buffers such as
        ``num_batches_tracked`` may keep their defaults)."""
        missing, unexpected = model.load_state_dict(state, strict=False)
        params = dict(model.named_parameters())
        if unexpected or any(key in params for key in missing):
            raise RuntimeError(f"state does not fit the model: missing {missing}, "
                               f"unexpected {unexpected}")

    def make_step(name, state, batch):
        model = _model(name)
        load(model, {key: lib.from_numpy(value) for key, value in state.items()})
        model.train()
        opt = _optimizer(name, model.parameters())
        x, y = lib.from_numpy(batch[0]), lib.from_numpy(batch[1])

        def step():
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            return loss

        return step

    return make_step


def to_float(loss):
    return float(loss.item())
