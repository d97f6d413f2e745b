import ember
from ember import nn, optim

ember.manual_seed(0)
x = ember.randn(512, 2)                               # two interleaved classes
y = ((x[:, 0] * x[:, 1]) > 0).long()

model = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 2))
opt = optim.Adam(model.parameters(), lr=1e-2)
loss_fn = nn.CrossEntropyLoss()

for step in range(300):
    loss = loss_fn(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()

accuracy = (model(x).argmax(1) == y).float().mean().item()
print(f"loss {loss.item():.3f}, accuracy {accuracy:.1%}")
