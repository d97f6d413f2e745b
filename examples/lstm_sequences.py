"""An LSTM that classifies token sequences of different lengths, with packed sequences.

    python examples/lstm_sequences.py [--epochs 15] [--samples 1200]

Each sequence (3 to 12 tokens from a vocabulary of 20; see
``ember.data.datasets.make_sequences``) is labelled 1 when token 1 appears more often than
token 2. A batch is padded to its longest sequence, and ``pack_padded_sequence`` tells the
LSTM each sequence's true length, so the padding never reaches the final hidden state.
"""

import argparse

import ember
from ember import nn, optim
from ember.data import DataLoader, datasets
from ember.nn.utils.rnn import pack_padded_sequence, pad_sequence


class SequenceClassifier(nn.Module):
    """Embedding -> LSTM over the packed batch -> linear layer on the last hidden state."""

    def __init__(self, vocab=20, embed=16, hidden=32, classes=2):
        super().__init__()
        self.embed = nn.Embedding(vocab, embed, padding_idx=0)  # token 0 is the padding
        self.lstm = nn.LSTM(embed, hidden, batch_first=True)
        self.head = nn.Linear(hidden, classes)

    def forward(self, tokens, lengths):
        packed = pack_padded_sequence(self.embed(tokens), lengths, batch_first=True,
                                      enforce_sorted=False)
        _, (h_n, _) = self.lstm(packed)  # h_n: (layers, batch, hidden), in the batch's order
        return self.head(h_n[-1])


def collate(samples):
    """A list of (sequence, label) pairs -> (padded tokens (B, T), lengths (B,), labels (B,))."""
    sequences = [s for s, _ in samples]
    lengths = ember.tensor([len(s) for s in sequences])
    labels = ember.tensor([int(y) for _, y in samples])
    return pad_sequence(sequences, batch_first=True, padding_value=0), lengths, labels


def accuracy(model, loader):
    model.eval()
    correct = total = 0
    with ember.no_grad():
        for tokens, lengths, labels in loader:
            correct += (model(tokens, lengths).argmax(1) == labels).sum().item()
            total += len(labels)
    return correct / total


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--samples", type=int, default=1200, help="training sequences")
    args = parser.parse_args(argv)
    ember.manual_seed(0)

    train_x, train_y = datasets.make_sequences(n_samples=args.samples, seed=0)
    test_x, test_y = datasets.make_sequences(n_samples=400, seed=1)
    train = DataLoader(list(zip(train_x, train_y)), batch_size=32, shuffle=True,
                       collate_fn=collate)
    test = DataLoader(list(zip(test_x, test_y)), batch_size=200, collate_fn=collate)
    print(f"{len(train_x)} training sequences, lengths {min(len(s) for s in train_x)} to "
          f"{max(len(s) for s in train_x)}; label 1 for {train_y.float().mean().item():.0%}")

    model = SequenceClassifier()
    optimizer = optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(args.epochs):
        model.train()
        for tokens, lengths, labels in train:
            loss = loss_fn(model(tokens, lengths), labels)
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
        print(f"epoch {epoch + 1}/{args.epochs}: loss {loss.item():.4f}")

    result = accuracy(model, test)
    print(f"test accuracy {result:.2%}")
    return result


if __name__ == "__main__":
    main()
