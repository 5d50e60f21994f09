class VoiceChatClient {
    constructor(chatbotId, authToken) {
        this.chatbotId = chatbotId;
        this.authToken = authToken;
        this.ws = null;
        this.mediaRecorder = null;
        this.audioChunks = [];
    }
    
    connect() {
        const wsUrl = `ws://localhost:8000/api/v1/ws/voice/${this.chatbotId}?token=${this.authToken}`;
        this.ws = new WebSocket(wsUrl);
        
        this.ws.onopen = () => {
            console.log('Voice chat connected');
            this.sendMessage({type: 'ping'});
        };
        
        this.ws.onmessage = (event) => {
            if (event.data instanceof Blob) {
                // Received audio response
                this.playAudio(event.data);
            } else {
                // Received status message
                const message = JSON.parse(event.data);
                this.handleStatusMessage(message);
            }
        };
        
        this.ws.onerror = (error) => {
            console.error('WebSocket error:', error);
        };
    }
    
    startRecording() {
        navigator.mediaDevices.getUserMedia({ audio: true })
            .then(stream => {
                this.mediaRecorder = new MediaRecorder(stream, {
                    mimeType: 'audio/webm;codecs=opus'
                });
                
                this.mediaRecorder.ondataavailable = (event) => {
                    this.audioChunks.push(event.data);
                };
                
                this.mediaRecorder.onstop = () => {
                    const audioBlob = new Blob(this.audioChunks, {
                        type: 'audio/webm'
                    });
                    this.sendAudio(audioBlob);
                    this.audioChunks = [];
                };
                
                this.sendMessage({type: 'audio_start'});
                this.mediaRecorder.start(100); // 100ms chunks
            })
            .catch(err => console.error('Media access error:', err));
    }
    
    stopRecording() {
        if (this.mediaRecorder && this.mediaRecorder.state === 'recording') {
            this.mediaRecorder.stop();
            this.sendMessage({type: 'audio_stop'});
        }
    }
    
    sendMessage(message) {
        if (this.ws && this.ws.readyState === WebSocket.OPEN) {
            this.ws.send(JSON.stringify(message));
        }
    }
    
    sendAudio(audioBlob) {
        audioBlob.arrayBuffer().then(buffer => {
            if (this.ws && this.ws.readyState === WebSocket.OPEN) {
                this.ws.send(buffer);
            }
        });
    }
    
    handleStatusMessage(message) {
        switch (message.type) {
            case 'pong':
                console.log('Connection alive');
                break;
            case 'transcription_complete':
                console.log('Transcribed:', message.text);
                this.displayTranscription(message.text);
                break;
            case 'response_generated':
                console.log('AI Response:', message.text);
                this.displayResponse(message.text);
                break;
            case 'voice_processing_complete':
                console.log('Processing complete');
                break;
            case 'voice_processing_error':
                console.error('Processing error:', message.error);
                break;
        }
    }
    
    playAudio(audioBlob) {
        const audioUrl = URL.createObjectURL(audioBlob);
        const audio = new Audio(audioUrl);
        audio.play().catch(e => console.error('Audio play error:', e));
    }
    
    sendTextMessage(text) {
        this.sendMessage({
            type: 'text_message',
            content: text
        });
    }
}
