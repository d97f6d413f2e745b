"""TrainingMixin: the Keras-style methods every ``nn.Module`` has (compile, fit, evaluate,
predict, train_on_batch, test_on_batch, summary).

The methods are thin: each hands over to ``ember.train.trainer`` (imported on first use, so
``import ember`` stays quick and nn does not depend on the training code at import time).
``compile`` stores its Trainer in the module's ``__dict__`` under ``_trainer`` and sets
``model.optimizer``; ``fit`` sets ``model.history`` and ``model.stop_training``.
"""


class TrainingMixin:
    """Keras's training API on a PyTorch-style Module::

        model = nn.Sequential(nn.Linear(out_features=64), nn.ReLU(), nn.Linear(out_features=10))
        model.compile(optimizer="adam", loss="cross_entropy", metrics=["accuracy"])
        history = model.fit(x_train, y_train, epochs=10, batch_size=64, validation_split=0.1)
        model.evaluate(x_test, y_test)
        probabilities = model.predict(x_new)
    """

    def compile(self, optimizer="rmsprop", loss=None, metrics=None):
        """Choose the optimizer, loss and metrics that ``fit`` and ``evaluate`` use.

        Args:
            optimizer: an ``ember.optim`` optimizer (bound or not: an unbound one, such as
                ``ember.optim.Adam(lr=1e-3)``, is bound to the model's trainable parameters
                when training starts) or a name: "sgd", "adam", "adamw", "rmsprop", "adagrad",
                "adadelta", "adamax", "nadam" (with Keras's default learning rates).
            loss: a callable ``loss(output, target) -> scalar Tensor`` (a function or an nn
                loss module) or a name: "cross_entropy" / "sparse_categorical_crossentropy"
                (logits and class labels), "categorical_crossentropy" (logits and one-hot
                targets), "binary_crossentropy" (logits and 0/1 targets), "mse", "mae",
                "huber". Names resolve in ember's own table only; see ember.train.registry.
            metrics: names ("accuracy", "top_k_accuracy", "precision", "recall", "f1",
                "auroc", "mse", "mae", "r2") or ``ember.metrics.Metric`` instances.

        Returns self.
        """
        from ember.train import trainer  # noqa: PLC0415

        state = trainer.Trainer(self, optimizer, loss, metrics)
        self.__dict__["_trainer"] = state
        self.optimizer = state.optimizer
        return self

    def _compiled(self, who):
        state = self.__dict__.get("_trainer")
        if state is None:
            from ember.train import trainer  # noqa: PLC0415

            raise trainer.NotCompiledError(
                f"{who}: the model is not compiled; call model.compile(optimizer=..., "
                f"loss=..., metrics=[...]) before model.{who}(...)"
            )
        return state

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0, steps_per_epoch=None, validation_steps=None,
            validation_batch_size=None, validation_freq=1):
        """Train for ``epochs`` epochs; returns a ``History`` (``history.history`` maps
        "loss", metric names and their "val_" versions to per-epoch lists).

        Args:
            x: inputs: a NumPy array or Tensor, a tuple/list of them (passed to forward as
                positional arguments), a dict (passed as keyword arguments), or a Dataset /
                DataLoader yielding ``(x, y)`` or ``(x, y, sample_weight)``.
            y: targets (with array inputs).
            batch_size: samples per step (default 32; a DataLoader keeps its own).
            epochs: the index of the last epoch, counting from ``initial_epoch``.
            verbose: "auto" or 1 (a progress bar in a terminal, one line per epoch
                otherwise), 2 (one line per epoch), 0 (silent).
            callbacks: ``ember.callbacks.Callback`` instances.
            validation_split: the fraction of the arrays (their last samples) held out for
                validation.
            validation_data: ``(x_val, y_val)``, ``(x_val, y_val, sample_weight)``, a Dataset
                or a DataLoader, evaluated at the end of each epoch.
            shuffle: reshuffle array data every epoch.
            class_weight: ``{class: weight}``: each sample's loss is scaled by its class's
                weight.
            sample_weight: one weight per sample, scaling its loss.
            initial_epoch: the epoch to start at (to resume a run).
            steps_per_epoch: batches per epoch; the data is then read as one endless,
                reshuffled stream.
            validation_steps, validation_batch_size, validation_freq: how much validation
                data to use, in which batches, and every how many epochs.
        """
        return self._compiled("fit").fit(
            x, y, batch_size=batch_size, epochs=epochs, verbose=verbose, callbacks=callbacks,
            validation_split=validation_split, validation_data=validation_data,
            shuffle=shuffle, class_weight=class_weight, sample_weight=sample_weight,
            initial_epoch=initial_epoch, steps_per_epoch=steps_per_epoch,
            validation_steps=validation_steps, validation_batch_size=validation_batch_size,
            validation_freq=validation_freq,
        )

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None,
                 steps=None, callbacks=None, return_dict=False):
        """The loss and metrics over ``x``/``y`` (in eval mode, without gradients): the loss
        alone when there are no metrics, else ``[loss, metric, ...]`` in compile's order, or a
        dict with ``return_dict=True``."""
        return self._compiled("evaluate").evaluate(
            x, y, batch_size=batch_size, verbose=verbose, sample_weight=sample_weight,
            steps=steps, callbacks=callbacks, return_dict=return_dict,
        )

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """The outputs for ``x`` as NumPy arrays, computed in batches of ``batch_size``
        (default 32) in eval mode without gradients. Needs no compile."""
        from ember.train import trainer  # noqa: PLC0415

        return trainer.predict(self, x, batch_size=batch_size, verbose=verbose, steps=steps,
                               callbacks=callbacks)

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None,
                       return_dict=False):
        """One optimizer step on the batch ``x``/``y``; returns its loss (and metrics), as
        ``evaluate`` does."""
        return self._compiled("train_on_batch").train_on_batch(
            x, y, sample_weight=sample_weight, class_weight=class_weight,
            return_dict=return_dict,
        )

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        """The loss (and metrics) of the batch ``x``/``y``, without training."""
        return self._compiled("test_on_batch").test_on_batch(
            x, y, sample_weight=sample_weight, return_dict=return_dict,
        )

    def summary(self, input_shape=None, *, example=None, dtype=None, print_fn=print):
        """Print a table of the layers: name, type, output shape and parameter count, then the
        totals of trainable and non-trainable parameters.

        Output shapes come from one forward pass (eval mode, no gradients) on zeros of
        ``input_shape`` (the shape of a batch; ``None`` as the batch size is shown as None;
        a list of shapes for several inputs) or on ``example``. A lazy model needs one of the
        two, and is built by it. Without either, a built model is listed without shapes.
        """
        from ember.train import summary  # noqa: PLC0415

        summary.summary(self, input_shape=input_shape, example=example, dtype=dtype,
                        print_fn=print_fn)
